{{/*
Names, labels, images and the store environment shared by every template.
*/}}

{{- define "pbt.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name prefix of every resource, cut to 63 characters (a DNS label). */}}
{{- define "pbt.fullname" -}}
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

{{/* "<fullname>-<suffix>" cut to 63 characters; call with (list $ "suffix"). */}}
{{- define "pbt.componentName" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- $prefix := include "pbt.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $prefix $suffix }}
{{- end }}

{{- define "pbt.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels; call with (dict "root" $ "component" "orchestrator"). */}}
{{- define "pbt.labels" -}}
helm.sh/chart: {{ include "pbt.chart" .root }}
{{ include "pbt.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: pbt
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels (immutable on Deployments and StatefulSets). */}}
{{- define "pbt.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pbt.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* "registry/repository:tag" of a project image; call with (dict "root" $ "image" .Values.x.image). */}}
{{- define "pbt.image" -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- if .root.Values.image.registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" .root.Values.image.registry) .image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{- define "pbt.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. */}}
{{- define "pbt.storeSecretName" -}}
{{- .Values.store.existingSecret | default (include "pbt.componentName" (list . "store")) }}
{{- end }}

{{/* host:port of the object store. */}}
{{- define "pbt.storeEndpoint" -}}
{{- if .Values.minio.enabled }}
{{- printf "%s.%s.svc.cluster.local:%d" (include "pbt.componentName" (list . "minio")) .Release.Namespace (int .Values.minio.port) }}
{{- else }}
{{- .Values.store.endpoint }}
{{- end }}
{{- end }}

{{- define "pbt.storeSecure" -}}
{{- if .Values.minio.enabled }}false{{ else }}{{ .Values.store.secure }}{{ end }}
{{- end }}

{{/* The store environment of pbt.store.open_store(): S3_* and AWS_* (credentials from the Secret). */}}
{{- define "pbt.storeEnv" -}}
- name: S3_ENDPOINT
  value: {{ include "pbt.storeEndpoint" . | quote }}
- name: S3_BUCKET
  value: {{ .Values.store.bucket | quote }}
- name: S3_SECURE
  value: {{ include "pbt.storeSecure" . | quote }}
- name: AWS_DEFAULT_REGION
  value: {{ .Values.store.region | quote }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "pbt.storeSecretName" . }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "pbt.storeSecretName" . }}
      key: AWS_SECRET_ACCESS_KEY
{{- end }}

{{/* A store location: a key in store.bucket becomes s3://<bucket>/<key>; full URIs pass through. */}}
{{- define "pbt.storageUri" -}}
{{- $path := index . 1 }}
{{- if contains "://" $path }}
{{- $path }}
{{- else }}
{{- printf "s3://%s/%s" (index . 0).Values.store.bucket (trimPrefix "/" $path) }}
{{- end }}
{{- end }}

{{/* InferenceService name of an agent role (room left for KServe's "-predictor-..." suffixes). */}}
{{- define "pbt.agentName" -}}
{{- $root := index . 0 }}
{{- $role := index . 1 }}
{{- $prefix := include "pbt.fullname" $root | trunc (int (sub 38 (len $role))) | trimSuffix "-" }}
{{- printf "%s-agent-%s" $prefix $role }}
{{- end }}

{{- define "pbt.agentsServiceAccountName" -}}
{{- .Values.agents.serviceAccount.name | default (include "pbt.componentName" (list . "agents")) }}
{{- end }}

{{/*
Agent endpoints, role -> {endpoint, model}, of every enabled role. The model is the served LoRA
adapter when one is set (huggingface runtime), else the InferenceService name (the name both
runtimes serve under: KServe's --model_name / the pbt server's --model-name).
*/}}
{{- define "pbt.agentEndpoints" -}}
{{- $root := . }}
{{- $out := dict }}
{{- range $role, $agent := .Values.agents.roles }}
{{- if $agent.enabled }}
{{- $name := include "pbt.agentName" (list $root $role) }}
{{- $endpoint := printf "http://%s-predictor.%s.svc.cluster.local/openai/v1" $name $root.Release.Namespace }}
{{- $model := ternary ($agent.servedAdapter | default $name) $name (eq $agent.runtime "huggingface") }}
{{- $_ := set $out $role (dict "endpoint" $endpoint "model" $model) }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* Volumes of the services and generation pods: a writable /tmp, the run config, datasets at /data. */}}
{{- define "pbt.commonVolumes" -}}
- name: tmp
  emptyDir: {}
- name: run-config
  configMap:
    name: {{ include "pbt.componentName" (list . "run-config") }}
{{- with .Values.dataVolume }}
- name: data
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "pbt.commonVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: run-config
  mountPath: /etc/pbt/run.yaml
  subPath: run.yaml
  readOnly: true
{{- if .Values.dataVolume }}
- name: data
  mountPath: /data
  readOnly: true
{{- end }}
{{- end }}

{{/* Environment every pbt container gets: the store and writable caches. */}}
{{- define "pbt.commonEnv" -}}
{{ include "pbt.storeEnv" . }}
- name: HOME
  value: /tmp
- name: HF_HOME
  value: /tmp/hf
{{- end }}

{{/*
Probes of a gRPC service; call with (dict "port" N "tls" bool). Plaintext: the kubelet's gRPC
probe calls grpc.health.v1 (served without a token). TLS: the kubelet's gRPC probe cannot speak
TLS, so the probes check the TCP port instead.
*/}}
{{- define "pbt.grpcProbes" -}}
{{- $check := ternary (dict "tcpSocket" (dict "port" .port)) (dict "grpc" (dict "port" .port)) .tls }}
startupProbe:
  {{- toYaml $check | nindent 2 }}
  periodSeconds: 2
  failureThreshold: 60
readinessProbe:
  {{- toYaml $check | nindent 2 }}
  periodSeconds: 10
  timeoutSeconds: 2
livenessProbe:
  {{- toYaml $check | nindent 2 }}
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 3
{{- end }}

{{/* PBT_GRPC_* settings of services.common.config.ServerConfig: bearer tokens and TLS. */}}
{{- define "pbt.grpcEnv" -}}
{{- with .Values.grpc.authSecret }}
- name: PBT_GRPC_AUTH_TOKENS
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: tokens
{{- end }}
{{- if .Values.grpc.tlsSecret }}
- name: PBT_GRPC_TLS_CERT_FILE
  value: /etc/pbt/tls/tls.crt
- name: PBT_GRPC_TLS_KEY_FILE
  value: /etc/pbt/tls/tls.key
{{- end }}
{{- end }}

{{/*
PBT_POLICY_* settings of services.common.policy.RequestPolicy (both gRPC services): requests may
name the chart's agents (by role or URL) and requestPolicy.extraAgents / agentUrlPrefixes, with
the API keys of requestPolicy.agentCredentials (from Secrets); files only under /data.
*/}}
{{- define "pbt.policyEnv" -}}
{{- $p := .Values.requestPolicy }}
{{- $agents := dict }}
{{- range $role, $a := (include "pbt.agentEndpoints" . | fromYaml) }}
{{- $_ := set $agents $role $a.endpoint }}
{{- end }}
{{- range $name, $url := $p.extraAgents }}
{{- $_ := set $agents $name $url }}
{{- end }}
- name: PBT_POLICY_AGENTS
  value: {{ toJson $agents | quote }}
{{- with $p.agentUrlPrefixes }}
- name: PBT_POLICY_AGENT_URL_PREFIXES
  value: {{ join "," . | quote }}
{{- end }}
{{- if $p.agentCredentials }}
{{- $creds := dict }}
{{- $i := 0 }}
{{- range $name, $ref := $p.agentCredentials }}
- name: {{ printf "PBT_AGENT_KEY_%d" $i }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.secretName }}
      key: {{ $ref.key }}
{{- $_ := set $creds $name (printf "PBT_AGENT_KEY_%d" $i) }}
{{- $i = add1 $i }}
{{- end }}
- name: PBT_POLICY_AGENT_CREDENTIALS
  value: {{ toJson $creds | quote }}
{{- end }}
- name: PBT_POLICY_ALLOW_LOCAL_BACKENDS
  value: {{ $p.allowLocalBackends | quote }}
{{- if .Values.dataVolume }}
- name: PBT_POLICY_DATA_ROOTS
  value: /data
{{- end }}
- name: PBT_POLICY_MAX_DEBATE_AGENTS
  value: {{ $p.maxDebateAgents | quote }}
- name: PBT_POLICY_MAX_DEBATE_TURNS
  value: {{ $p.maxDebateTurns | quote }}
- name: PBT_POLICY_MAX_TREE_NODES
  value: {{ $p.maxTreeNodes | quote }}
{{- end }}

{{/* Claim of agents.adapterVolume: the operator's existingClaim, else the chart's claimName. */}}
{{- define "pbt.adapterClaimName" -}}
{{- .Values.agents.adapterVolume.existingClaim | default .Values.agents.adapterVolume.claimName }}
{{- end }}
