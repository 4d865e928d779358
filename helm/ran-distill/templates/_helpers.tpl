{{/*
Chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "ran-distill.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name, unless it already contains the chart name.
*/}}
{{- define "ran-distill.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ran-distill.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ran-distill.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: stable across upgrades.
*/}}
{{- define "ran-distill.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ran-distill.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Common labels (app.kubernetes.io/* recommended labels).
*/}}
{{- define "ran-distill.labels" -}}
helm.sh/chart: {{ include "ran-distill.chart" . }}
{{ include "ran-distill.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: xapp
app.kubernetes.io/part-of: near-rt-ric
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "ran-distill.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ran-distill.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Container image reference: registry/repository, then @digest or :tag (default appVersion).
*/}}
{{- define "ran-distill.image" -}}
{{- $repo := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repo = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/*
onnxruntime intra-op threads: onnxruntime.intraOpThreads when set, else the ceiling of the
CPU limit in cores ("500m" -> 1, "1500m" -> 2, "2" -> 2, 2.5 -> 3), else 1.
*/}}
{{- define "ran-distill.intraOpThreads" -}}
{{- if .Values.onnxruntime.intraOpThreads }}
{{- .Values.onnxruntime.intraOpThreads | int }}
{{- else }}
{{- $cpu := "" }}
{{- with .Values.resources }}{{- with .limits }}{{- with .cpu }}{{- $cpu = toString . }}{{- end }}{{- end }}{{- end }}
{{- if not $cpu }}
{{- 1 }}
{{- else if hasSuffix "m" $cpu }}
{{- max 1 (div (add (trimSuffix "m" $cpu | int64) 999) 1000) }}
{{- else }}
{{- max 1 (ceil (float64 $cpu) | int64) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Directory the service loads its model from, for the chosen model.source.
*/}}
{{- define "ran-distill.modelDir" -}}
{{- if eq .Values.model.source "baked" }}
{{- .Values.model.bakedPath }}
{{- else }}
{{- .Values.model.mountPath }}
{{- end }}
{{- end }}

{{/*
Transport security and authorization: the path of the cells mapping ("" when off), the
ConfigMap holding it, and the scheme of the HTTP port.
*/}}
{{- define "ran-distill.authzCellsFile" -}}
{{- if .Values.authorization.enabled }}
{{- printf "%s/%s" .Values.authorization.mountPath .Values.authorization.configMapKey }}
{{- end }}
{{- end }}

{{- define "ran-distill.authzConfigMapName" -}}
{{- default (printf "%s-authz" (include "ran-distill.fullname" .)) .Values.authorization.existingConfigMap }}
{{- end }}

{{- define "ran-distill.httpScheme" -}}
{{- ternary "HTTPS" "HTTP" (not (not .Values.tls.enabled)) }}
{{- end }}

{{/*
Refuse value combinations that would deploy something that looks secure and is not.
*/}}
{{- define "ran-distill.checkSecurity" -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) }}
{{- fail "tls.enabled needs tls.existingSecret (a Secret with the certificate, key and CA)" }}
{{- end }}
{{- if and .Values.authorization.enabled (not (and .Values.tls.enabled .Values.tls.requireClientCert)) }}
{{- fail "authorization.enabled needs tls.enabled and tls.requireClientCert: without verified client certificates the cell mapping cannot apply" }}
{{- end }}
{{- if and .Values.authorization.enabled (not .Values.authorization.existingConfigMap) (not .Values.authorization.identities) }}
{{- fail "authorization.enabled needs authorization.identities or authorization.existingConfigMap" }}
{{- end }}
{{- end }}

{{- define "ran-distill.adminTokenSecretName" -}}
{{- default (printf "%s-admin" (include "ran-distill.fullname" .)) .Values.adminToken.existingSecret }}
{{- end }}

{{- define "ran-distill.adminTokenSecretKey" -}}
{{- if .Values.adminToken.existingSecret }}
{{- .Values.adminToken.existingSecretKey }}
{{- else }}
{{- "admin-token" }}
{{- end }}
{{- end }}

{{/*
The O-RAN SC xApp descriptor (xapp-descriptor/config-file.json) for this release: the
container image, the ports, the probes and the controls the pod actually runs with.
*/}}
{{- define "ran-distill.descriptor" -}}
{{- $tls := .Values.tls }}
{{- $mtls := and $tls.enabled $tls.requireClientCert }}
{{- $controls := dict
  "model_dir" (include "ran-distill.modelDir" .)
  "grpc_port" (.Values.containerPorts.grpc | int)
  "http_port" (.Values.containerPorts.http | int)
  "ort_intra_op_threads" (include "ran-distill.intraOpThreads" . | int)
  "ort_inter_op_threads" (.Values.onnxruntime.interOpThreads | int)
  "tls_cert_file" (ternary (printf "%s/%s" $tls.mountPath $tls.certKey) "" (not (not $tls.enabled)))
  "tls_key_file" (ternary (printf "%s/%s" $tls.mountPath $tls.keyKey) "" (not (not $tls.enabled)))
  "tls_client_ca_file" (ternary (printf "%s/%s" $tls.mountPath $tls.caKey) "" (not (not $mtls)))
  "tls_require_client_cert" (not (not $mtls))
  "authz_cells_file" (include "ran-distill.authzCellsFile" .)
}}
{{- $controls = merge $controls (deepCopy .Values.controls) }}
{{- $image := dict
  "registry" (.Values.image.registry | default "")
  "name" .Values.image.repository
  "tag" (.Values.image.tag | default .Chart.AppVersion | toString)
}}
{{- $container := dict
  "name" (include "ran-distill.name" .)
  "image" $image
  "command" (list "ran-distill" "serve")
  "args" (list "--model" (include "ran-distill.modelDir" .) "--grpc-port" (toString .Values.containerPorts.grpc) "--http-port" (toString .Values.containerPorts.http))
}}
{{- $ports := list
  (dict "name" "http" "container" (include "ran-distill.name" .) "port" (.Values.containerPorts.http | int) "description" "REST API (/v1/decisions, /v1/model), O-RAN health (/ric/v1/health/*) and Prometheus metrics (/ric/v1/metrics)")
  (dict "name" "grpc" "container" (include "ran-distill.name" .) "port" (.Values.containerPorts.grpc | int) "description" "gRPC linkadapt.v1.LinkAdaptation (gNB-facing), grpc.health.v1 and, with grpc_reflection_enabled, server reflection")
}}
{{- $descriptor := dict
  "name" (include "ran-distill.name" .)
  "version" .Chart.AppVersion
  "vendor" "ran-distill"
  "moId" "SEP"
  "containers" (list $container)
  "messaging" (dict "ports" $ports)
  "livenessProbe" (dict "httpGet" (dict "path" "/ric/v1/health/alive" "port" (.Values.containerPorts.http | int)) "initialDelaySeconds" 5 "periodSeconds" 10)
  "readinessProbe" (dict "httpGet" (dict "path" "/ric/v1/health/ready" "port" (.Values.containerPorts.http | int)) "initialDelaySeconds" 2 "periodSeconds" 5)
  "metrics" (dict "url" .Values.metrics.path "port" (.Values.containerPorts.http | int) "format" "prometheus" "namespace" (include "ran-distill.namespace" .))
  "controls" $controls
}}
{{- toPrettyJson $descriptor }}
{{- end }}
