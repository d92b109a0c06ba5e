{{/*
One validation helper: checks the rules that span several values (values.schema.json checks
types, ranges and enums) and fails once with every problem, each naming its value path and
the value that was given.
*/}}
{{- define "pbt.validateValues" -}}
{{- $errors := list }}
{{- $v := .Values }}

{{- $bucket := toString ($v.store.bucket | default "") }}
{{- if not $bucket }}
{{- $errors = append $errors "store.bucket: a bucket name is required (got an empty value)" }}
{{- else if not (regexMatch "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$" $bucket) }}
{{- $errors = append $errors (printf "store.bucket: %q is not a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)" $bucket) }}
{{- end }}
{{- if not $v.minio.enabled }}
{{- if not $v.store.endpoint }}
{{- $errors = append $errors "store.endpoint: required when minio.enabled is false (host:port of the external S3 service)" }}
{{- else if contains "://" $v.store.endpoint }}
{{- $errors = append $errors (printf "store.endpoint: %q must be host[:port] without a scheme (use store.secure for https)" $v.store.endpoint) }}
{{- end }}
{{- if not $v.store.existingSecret }}
{{- $errors = append $errors "store.existingSecret: required when minio.enabled is false (a Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of the external S3)" }}
{{- end }}
{{- end }}

{{- range $key := list "orchestrator" "evaluator" }}
{{- $c := index $v $key }}
{{- if lt (int64 $c.replicas) 0 }}
{{- $errors = append $errors (printf "%s.replicas: must be >= 0 (got %v)" $key $c.replicas) }}
{{- end }}
{{- end }}
{{- with $v.orchestrator.autoscaling }}
{{- if and .enabled (gt (int64 .minReplicas) (int64 .maxReplicas)) }}
{{- $errors = append $errors (printf "orchestrator.autoscaling: minReplicas (%v) is greater than maxReplicas (%v)" .minReplicas .maxReplicas) }}
{{- end }}
{{- end }}

{{- if and (not $v.agents.serviceAccount.create) (not $v.agents.serviceAccount.name) }}
{{- $errors = append $errors "agents.serviceAccount.name: required when agents.serviceAccount.create is false (an existing ServiceAccount with the KServe S3 annotations)" }}
{{- end }}
{{- $runtimes := list "huggingface" "pbt" }}
{{- range $role, $a := $v.agents.roles }}
{{- if $a.enabled }}
{{- $p := printf "agents.roles.%s" $role }}
{{- if not (has $a.runtime $runtimes) }}
{{- $errors = append $errors (printf "%s.runtime: unknown agent runtime %q (use one of: %s)" $p (toString $a.runtime) (join ", " $runtimes)) }}
{{- end }}
{{- if not $a.model }}
{{- $errors = append $errors (printf "%s.model: a base model location is required" $p) }}
{{- end }}
{{- if gt (int64 $a.minReplicas) (int64 $a.maxReplicas) }}
{{- $errors = append $errors (printf "%s: minReplicas (%v) is greater than maxReplicas (%v)" $p $a.minReplicas $a.maxReplicas) }}
{{- end }}
{{- if and (eq $v.agents.deploymentMode "RawDeployment") (lt (int64 $a.minReplicas) 1) }}
{{- $errors = append $errors (printf "%s.minReplicas: scale to zero (got %v) needs agents.deploymentMode Serverless; RawDeployment keeps at least 1" $p $a.minReplicas) }}
{{- end }}
{{- $names := list }}
{{- range $i, $ad := ($a.adapters | default list) }}
{{- if has $ad.name $names }}
{{- $errors = append $errors (printf "%s.adapters[%d].name: duplicate adapter name %q" $p $i $ad.name) }}
{{- end }}
{{- $names = append $names $ad.name }}
{{- end }}
{{- if and (eq $a.runtime "pbt") (gt (len ($a.adapters | default list)) 1) }}
{{- $errors = append $errors (printf "%s.adapters: the pbt runtime serves one adapter (got %d); use the huggingface runtime for several" $p (len $a.adapters)) }}
{{- end }}
{{- if and $a.servedAdapter (not (has $a.servedAdapter $names)) }}
{{- $errors = append $errors (printf "%s.servedAdapter: %q is not among the adapters (%s)" $p $a.servedAdapter (join ", " $names)) }}
{{- end }}
{{- end }}
{{- end }}

{{- $extraction := dig "extraction" "mode" "llm" ($v.runConfig | default dict) }}
{{- if and (eq $extraction "llm") (not $v.agents.roles.extractor.enabled) }}
{{- $errors = append $errors "agents.roles.extractor.enabled: the run config's extraction.mode is llm, which needs the extractor agent (enable it or set runConfig.extraction.mode: rules)" }}
{{- end }}
{{- if $v.training.enabled }}
{{- if not $v.training.config }}
{{- $errors = append $errors "training.config: required when training.enabled is true (the contents of a training/configs/*.yaml file)" }}
{{- end }}
{{- with (dig "stage" "" ($v.training.config | default dict)) }}
{{- if ne (printf "training.%s" .) $v.training.module }}
{{- $errors = append $errors (printf "training.module: %q runs another stage than training.config.stage %q" $v.training.module .) }}
{{- end }}
{{- end }}
{{- if and (gt (int64 $v.training.gpusPerNode) 0) (gt (int64 $v.training.nprocPerNode) (int64 $v.training.gpusPerNode)) }}
{{- $errors = append $errors (printf "training.nprocPerNode: %v processes per node but only %v GPUs per node" $v.training.nprocPerNode $v.training.gpusPerNode) }}
{{- end }}
{{- end }}
{{- with $v.agents.adapterVolume }}
{{- if and .enabled (not .existingClaim) }}
{{- if not .create }}
{{- $errors = append $errors "agents.adapterVolume.existingClaim: required when agents.adapterVolume.create is false (the operator's ReadWriteMany claim)" }}
{{- else if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" (toString .claimName)) }}
{{- $errors = append $errors (printf "agents.adapterVolume.claimName: %q is not a DNS label of at most 63 characters (the claim the chart creates)" (toString .claimName)) }}
{{- else if not .size }}
{{- $errors = append $errors "agents.adapterVolume.size: required when the chart creates the claim (e.g. 20Gi)" }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $v.generation.enabled (not (or $v.agents.roles.a.enabled $v.agents.roles.b.enabled)) }}
{{- $errors = append $errors "generation.enabled: tree generation needs agents.roles.a and agents.roles.b enabled" }}
{{- end }}

{{- if $errors }}
{{- fail (printf "\n\npbt chart: invalid values:\n  - %s\n" (join "\n  - " $errors)) }}
{{- end }}
{{- end }}
