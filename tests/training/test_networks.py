import pytest
import torch

from training.networks import (
    ARCHITECTURES,
    DuelingQNet,
    GRUQNet,
    arch_spec,
    build_qnet,
    is_recurrent,
    parameter_count,
)


def test_reference_teacher_is_about_105k_parameters_at_simulator_obs_size():
    from linkadapt.features import OBS_DIM

    n = parameter_count(build_qnet("mlp-7x128", OBS_DIM, 28))
    assert 100_000 <= n <= 110_000


def test_parameter_count_matches_layer_arithmetic():
    # 5 -> 32 -> 32 -> 3: (5*32+32) + (32*32+32) + (32*3+3)
    assert parameter_count(build_qnet("mlp-2x32", 5, 3)) == 192 + 1056 + 99


def test_student_sizes_are_much_smaller_than_teacher():
    teacher = parameter_count(build_qnet("mlp-7x128", 29, 28))
    for name in ("mlp-3x32", "mlp-4x32", "mlp-4x64"):
        assert parameter_count(build_qnet(name, 29, 28)) < teacher / 5


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_named_architecture_maps_batch_to_q_values(name):
    net = build_qnet(name, 7, 4)
    q = net(torch.randn(5, 7))
    assert q.shape == (5, 4)
    assert torch.isfinite(q).all()


def test_dueling_advantages_have_zero_mean_offset():
    torch.manual_seed(0)
    net = DuelingQNet(6, 5, depth=2, width=16)
    x = torch.randn(8, 6)
    h = net.trunk(x)
    # Q averaged over actions equals the state value V(s).
    assert torch.allclose(net(x).mean(dim=1), net.value(h).squeeze(1), atol=1e-6)


def test_gru_single_step_forward_equals_sequence_from_zero_state():
    torch.manual_seed(0)
    net = GRUQNet(6, 4, depth=1, width=16)
    x = torch.randn(3, 6)
    q_seq, h = net.forward_seq(x.unsqueeze(1), net.initial_state(3))
    assert torch.allclose(net(x), q_seq.squeeze(1), atol=1e-6)
    assert h.shape == (1, 3, 16)
    assert is_recurrent(net) and not is_recurrent(build_qnet("mlp-2x8", 6, 4))


def test_gru_state_carries_information_across_steps():
    torch.manual_seed(0)
    net = GRUQNet(3, 2, depth=1, width=8)
    seq = torch.randn(1, 4, 3)
    q_full, _ = net.forward_seq(seq)
    q_last_alone, _ = net.forward_seq(seq[:, -1:])
    assert not torch.allclose(q_full[:, -1], q_last_alone[:, 0])


def test_arch_names_parse_and_reject_garbage():
    assert arch_spec("dueling-3x32").kind == "dueling"
    assert arch_spec("mlp-5x16").depth == 5
    assert arch_spec("gru-64").width == 64
    with pytest.raises(ValueError, match="unknown architecture"):
        arch_spec("transformer-9000")
