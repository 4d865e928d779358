{{/*
The cell-affine router (router.enabled): names, labels and the HAProxy configuration.
The configuration carries the defaults and backends of deploy/haproxy/haproxy.cfg
(tests/deploy/test_deploy_router.py keeps the two in step); only the servers differ: one
per xApp pod ordinal, found by its stable StatefulSet DNS name.
*/}}
{{- define "ran-distill.routerName" -}}
{{- printf "%s-router" (include "ran-distill.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{- define "ran-distill.podsServiceName" -}}
{{- printf "%s-pods" (include "ran-distill.fullname" . | trunc 58 | trimSuffix "-") }}
{{- end }}

{{- define "ran-distill.routerSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-router" (include "ran-distill.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ran-distill.routerLabels" -}}
helm.sh/chart: {{ include "ran-distill.chart" . }}
{{ include "ran-distill.routerSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.router.image.tag | toString | quote }}
app.kubernetes.io/component: router
app.kubernetes.io/part-of: near-rt-ric
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "ran-distill.routerImage" -}}
{{- $img := .Values.router.image }}
{{- $repo := $img.repository }}
{{- if $img.registry }}
{{- $repo = printf "%s/%s" $img.registry $img.repository }}
{{- end }}
{{- if $img.digest }}
{{- printf "%s@%s" $repo $img.digest }}
{{- else }}
{{- printf "%s:%s" $repo ($img.tag | toString) }}
{{- end }}
{{- end }}

{{/*
xApp pod slots: router.maxServers, else autoscaling.maxReplicas (autoscaling on), else
replicaCount (at least 1).
*/}}
{{- define "ran-distill.routerMaxServers" -}}
{{- if .Values.router.maxServers }}
{{- .Values.router.maxServers | int }}
{{- else if .Values.autoscaling.enabled }}
{{- .Values.autoscaling.maxReplicas | int }}
{{- else }}
{{- max 1 (.Values.replicaCount | int) }}
{{- end }}
{{- end }}

{{- define "ran-distill.haproxyConfig" -}}
{{- $n := include "ran-distill.routerMaxServers" . | int }}
{{- $fqdn := printf "%s.%s.svc.%s" (include "ran-distill.podsServiceName" .) (include "ran-distill.namespace" .) .Values.router.clusterDomain }}
{{- $pod := include "ran-distill.fullname" . }}
{{- $grpc := .Values.containerPorts.grpc | int }}
{{- $http := .Values.containerPorts.http | int }}
{{- $ports := .Values.router.containerPorts -}}
{{- $adm := .Values.router.admission -}}
# HAProxy 2.6: cell-affine routing to the xApp pods (see deploy/haproxy/haproxy.cfg).
global
    maxconn {{ .Values.router.maxconn }}
    log stderr format raw local0 {{ .Values.router.logLevel }}

# The xApp pods by their StatefulSet DNS names (published while ready).
resolvers k8s
    parse-resolv-conf
    resolve_retries 3
    timeout resolve 1s
    timeout retry 1s
    hold valid 5s
    hold nx 2s
    hold obsolete 2s
    accepted_payload_size 8192

defaults
    mode http
    log global
    option dontlognull
    timeout connect 500ms
    timeout client 1h
    timeout server 1h
    timeout http-request 10s
    timeout queue 1s
    timeout check 1s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

# Unary calls: at most admission.serverMaxconn in flight per pod, the rest queued here
# (refused at once by the grpc frontend when admission.queuePerServer wait per pod).
backend xapp_grpc
    balance hdr(x-ran-cell-id)
    hash-type consistent sdbm avalanche
    timeout queue {{ $adm.queueTimeoutMs }}ms
    option httpchk
    http-check send meth GET uri /ric/v1/health/ready ver HTTP/1.1 hdr host xapp
    http-check expect status 200
    default-server check inter 500ms fastinter 200ms downinter 500ms fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down maxconn {{ $adm.serverMaxconn }}
{{- range $i := until $n }}
    server xapp{{ add1 $i }} {{ $pod }}-{{ $i }}.{{ $fqdn }}:{{ $grpc }} id {{ add1 $i }} proto h2 port {{ $http }} check-proto h1 resolvers k8s init-addr none
{{- end }}

# DecideStream: one long-lived call per cell, no call limit (the xApp bounds each stream).
backend xapp_grpc_stream
    balance hdr(x-ran-cell-id)
    hash-type consistent sdbm avalanche
{{- range $i := until $n }}
    server xapp{{ add1 $i }} {{ $pod }}-{{ $i }}.{{ $fqdn }}:{{ $grpc }} id {{ add1 $i }} proto h2 track xapp_grpc/xapp{{ add1 $i }} resolvers k8s init-addr none
{{- end }}

backend xapp_http
    balance hdr(x-ran-cell-id)
    hash-type consistent sdbm avalanche
{{- range $i := until $n }}
    server xapp{{ add1 $i }} {{ $pod }}-{{ $i }}.{{ $fqdn }}:{{ $http }} id {{ add1 $i }} track xapp_grpc/xapp{{ add1 $i }} resolvers k8s init-addr none
{{- end }}

frontend grpc
    bind :{{ $ports.grpc }} proto h2
    use_backend xapp_grpc_stream if { path_end /DecideStream }
    http-request return status 200 content-type application/grpc hdr grpc-status 8 hdr grpc-message "ran-distill router: replica queue full" if { avg_queue(xapp_grpc) ge {{ $adm.queuePerServer }} } !{ path_end /DecideStream }
    default_backend xapp_grpc

frontend http
    bind :{{ $ports.http }}
    default_backend xapp_http

frontend stats
    bind :{{ $ports.stats }}
    http-request return status 200 content-type text/plain string ok if { path /healthz }
    http-request return status 503 content-type text/plain string no-xapp-up if { path /ready } { nbsrv(xapp_grpc) eq 0 }
    http-request return status 200 content-type text/plain string ok if { path /ready }
    http-request use-service prometheus-exporter if { path /metrics }
    stats enable
    stats uri /stats
    stats refresh 0
{{- end }}
