{{/*
Expand the name of the chart.
*/}}
{{- define "eventfn.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name (63 characters: the DNS-1123 label limit).
If the release name contains the chart name it is used as the full name.
*/}}
{{- define "eventfn.fullname" -}}
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

{{/*
Chart name and version as used by the chart label.
*/}}
{{- define "eventfn.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "eventfn.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eventfn.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "eventfn.labels" -}}
helm.sh/chart: {{ include "eventfn.chart" . }}
{{ include "eventfn.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "eventfn.fullname" . }}
{{- end }}

{{/*
Labels of one object: common labels, its component (namespace, broker, function, trigger, ...)
and, for the objects of a function, eventfn.dev/function.
Call with (dict "root" $ "component" "trigger" "function" "echo"); "function" is optional.
*/}}
{{- define "eventfn.componentLabels" -}}
{{ include "eventfn.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- with .function }}
eventfn.dev/function: {{ . }}
{{- end }}
{{- end }}

{{/*
Deep merge of two maps, the second winning; maps merge recursively, anything else (lists
included) is replaced; null in the second map keeps the first's value. Unlike sprig's
mergeOverwrite, false, 0 and "" do override. Call with (list $base $override); returns YAML.
*/}}
{{- define "eventfn.merge" -}}
{{- $out := deepCopy (index . 0) }}
{{- range $key, $value := (index . 1) }}
{{- $current := get $out $key }}
{{- if and (kindIs "map" $value) (kindIs "map" $current) }}
{{- $_ := set $out $key (include "eventfn.merge" (list $current $value) | fromYaml) }}
{{- else if not (kindIs "invalid" $value) }}
{{- $_ := set $out $key $value }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
A function's effective settings: functionDefaults deep-merged with functions.<name>.
Call with (dict "root" $ "name" "echo"); returns YAML (use fromYaml).
*/}}
{{- define "eventfn.function" -}}
{{- $fn := index .root.Values.functions .name | default dict }}
{{- include "eventfn.merge" (list .root.Values.functionDefaults $fn) }}
{{- end }}

{{/*
The names of the enabled functions, sorted; returns a JSON list (use fromJsonArray).
*/}}
{{- define "eventfn.enabledFunctions" -}}
{{- $names := list }}
{{- range $name, $_ := .Values.functions }}
{{- $fn := include "eventfn.function" (dict "root" $ "name" $name) | fromYaml }}
{{- if $fn.enabled }}
{{- $names = append $names $name }}
{{- end }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{/*
Image reference of a function: <repository>:<tag>. images.<name with - as _> wins (skaffold sets
it), then functions.<name>.image; repository defaults to <imageRegistry>/<name>, tag to the
chart's appVersion. A tag may carry a digest (tag@sha256:...). `latest` is refused.
Call with (dict "root" $ "name" "echo" "fn" $fn).
*/}}
{{- define "eventfn.image" -}}
{{- $override := get .root.Values.images (replace "-" "_" .name) | default dict }}
{{- $repository := $override.repository | default .fn.image.repository | default (printf "%s/%s" .root.Values.imageRegistry .name) }}
{{- $tag := $override.tag | default .fn.image.tag | default .root.Chart.AppVersion | toString }}
{{- include "eventfn.imageRef" (dict "repository" $repository "tag" $tag "what" (printf "function %s" .name)) }}
{{- end }}

{{/*
<repository>:<tag>, refusing `latest` (as a tag, or as the tag part of tag@digest).
Call with (dict "repository" "r" "tag" "t" "what" "function echo").
*/}}
{{- define "eventfn.imageRef" -}}
{{- if or (eq .tag "latest") (hasPrefix "latest@" .tag) (hasSuffix ":latest" .repository) }}
{{- fail (printf "%s: image tag `latest` is not allowed; pin a version (default: the chart appVersion)" .what) }}
{{- end }}
{{- printf "%s:%s" .repository .tag }}
{{- end }}

{{/*
The runtime image (Dockerfile.base) that runs `eventfn` in jobs. Call with (dict "root" $ "image"
$override) where $override may set repository/tag (a CronJob's own image).
*/}}
{{- define "eventfn.runtimeImage" -}}
{{- $runtime := .root.Values.runtimeImage }}
{{- $override := .image | default dict }}
{{- $repository := $override.repository | default $runtime.repository | default (printf "%s/base" .root.Values.imageRegistry) }}
{{- $tag := $override.tag | default $runtime.tag | default .root.Chart.AppVersion | toString }}
{{- include "eventfn.imageRef" (dict "repository" $repository "tag" $tag "what" "runtimeImage") }}
{{- end }}

{{/*
A pinned third-party image (repository, tag). Call with the image map.
*/}}
{{- define "eventfn.pinnedImage" -}}
{{- include "eventfn.imageRef" (dict "repository" .repository "tag" (toString .tag) "what" .repository) }}
{{- end }}

{{/*
The broker's in-cluster ingress URL (K_SINK): broker.url, else computed from the class.
*/}}
{{- define "eventfn.brokerUrl" -}}
{{- $b := .Values.broker }}
{{- if $b.url }}
{{- $b.url }}
{{- else if eq $b.class "MTChannelBasedBroker" }}
{{- printf "http://broker-ingress.knative-eventing.svc.cluster.local/%s/%s" .Release.Namespace $b.name }}
{{- else if eq $b.class "Kafka" }}
{{- printf "http://kafka-broker-ingress.knative-eventing.svc.cluster.local/%s/%s" .Release.Namespace $b.name }}
{{- else }}
{{- fail (printf "broker.class %s: set broker.url to the broker's ingress URL (status.address.url)" $b.class) }}
{{- end }}
{{- end }}

{{/*
The Broker's spec.config as YAML, or nothing: broker.config when set; for class Kafka the
rendered ConfigMap (broker.kafka.config.create) or knative-eventing/kafka-broker-config.
*/}}
{{- define "eventfn.brokerConfig" -}}
{{- $b := .Values.broker }}
{{- $kafka := $b.kafka.config }}
{{- if $b.config }}
{{- toYaml $b.config }}
{{- else if eq $b.class "Kafka" }}
{{- toYaml (dict "apiVersion" "v1" "kind" "ConfigMap" "name" $kafka.name "namespace" (ternary .Release.Namespace "knative-eventing" $kafka.create)) }}
{{- end }}
{{- end }}

{{/*
Seconds of an ISO-8601 duration limited to hours, minutes and seconds (PT1H2M3.5S).
Returns the number as a string (use float64).
*/}}
{{- define "eventfn.durationSeconds" -}}
{{- if not (regexMatch "^PT([0-9]+H)?([0-9]+M)?([0-9]+(\\.[0-9]+)?S)?$" .) }}
{{- fail (printf "%q is not an ISO-8601 duration such as PT30S" .) }}
{{- end }}
{{- $hours := regexFind "[0-9]+H" . | trimSuffix "H" | default "0" | float64 }}
{{- $minutes := regexFind "[0-9]+M" . | trimSuffix "M" | default "0" | float64 }}
{{- $seconds := regexFind "[0-9.]+S" . | trimSuffix "S" | default "0" | float64 }}
{{- addf (mulf $hours 3600) (mulf $minutes 60) $seconds }}
{{- end }}

{{/*
The dead-letter sink of a function's Triggers as YAML, or nothing: deadLetter.uri, else a
reference to the deadLetter.function Service. The dead-letter function itself gets none.
Call with (dict "root" $ "name" "echo").
*/}}
{{- define "eventfn.deadLetterSink" -}}
{{- $dl := .root.Values.deadLetter }}
{{- if and $dl.enabled (ne .name $dl.function) }}
{{- if $dl.uri }}
uri: {{ $dl.uri }}
{{- else }}
{{- $enabled := include "eventfn.enabledFunctions" .root | fromJsonArray }}
{{- if not (has $dl.function $enabled) }}
{{- fail (printf "deadLetter.function %s is not an enabled function: declare it under functions, set deadLetter.uri, or set deadLetter.enabled=false" $dl.function) }}
{{- end }}
ref:
  apiVersion: serving.knative.dev/v1
  kind: Service
  name: {{ $dl.function }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Names of the in-chart services (they follow the release's full name).
*/}}
{{- define "eventfn.postgresqlName" -}}
{{- printf "%s-postgresql" (include "eventfn.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "eventfn.minioName" -}}
{{- printf "%s-minio" (include "eventfn.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "eventfn.collectorName" -}}
{{- printf "%s-otel-collector" (include "eventfn.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Whether a database is configured ("true" or ""); refuses both kinds at once.
*/}}
{{- define "eventfn.databaseEnabled" -}}
{{- $db := .Values.database }}
{{- if and $db.external.enabled $db.postgresql.enabled }}
{{- fail "database: enable either external or postgresql, not both" }}
{{- end }}
{{- if or $db.external.enabled $db.postgresql.enabled }}true{{ end }}
{{- end }}

{{/*
The S3 endpoint functions use: objectStorage.endpoint, else the in-chart MinIO, else "" (AWS).
*/}}
{{- define "eventfn.s3Endpoint" -}}
{{- $os := .Values.objectStorage }}
{{- if $os.endpoint }}
{{- $os.endpoint }}
{{- else if $os.minio.enabled }}
{{- printf "http://%s.%s.svc.cluster.local:9000" (include "eventfn.minioName" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
The OTLP endpoint: telemetry.otlpEndpoint, else the in-chart collector, else "" (no export).
*/}}
{{- define "eventfn.otlpEndpoint" -}}
{{- $t := .Values.telemetry }}
{{- if $t.otlpEndpoint }}
{{- $t.otlpEndpoint }}
{{- else if $t.collector.enabled }}
{{- printf "http://%s.%s.svc.cluster.local:4318" (include "eventfn.collectorName" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
OTEL_RESOURCE_ATTRIBUTES: service.namespace, service.version, k8s.namespace.name,
deployment.environment (when set), telemetry.resourceAttributes and the workload's own, as
comma-separated key=value pairs sorted by key. Call with (dict "root" $ "extra" $map).
*/}}
{{- define "eventfn.resourceAttributes" -}}
{{- $root := .root }}
{{- $attributes := dict "service.namespace" $root.Release.Namespace "service.version" $root.Chart.AppVersion "k8s.namespace.name" $root.Release.Namespace }}
{{- with $root.Values.telemetry.environment }}
{{- $_ := set $attributes "deployment.environment" . }}
{{- end }}
{{- range $key, $value := $root.Values.telemetry.resourceAttributes }}
{{- $_ := set $attributes $key $value }}
{{- end }}
{{- range $key, $value := .extra | default dict }}
{{- $_ := set $attributes $key $value }}
{{- end }}
{{- $pairs := list }}
{{- range $key := keys $attributes | sortAlpha }}
{{- $pairs = append $pairs (printf "%s=%s" $key (get $attributes $key)) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/*
The environment the platform gives a workload (function or job) as a YAML map NAME -> value or
NAME -> {secretKeyRef: ...}: broker, database, object storage and telemetry settings.
Call with (dict "root" $ "name" "echo" "uses" $uses "attributes" $map).
*/}}
{{- define "eventfn.platformEnv" -}}
{{- $root := .root }}
{{- $values := $root.Values }}
{{- $env := dict "K_SINK" (include "eventfn.brokerUrl" $root) "OTEL_SERVICE_NAME" .name "OTEL_RESOURCE_ATTRIBUTES" (include "eventfn.resourceAttributes" (dict "root" $root "extra" .attributes)) }}
{{- with include "eventfn.otlpEndpoint" $root }}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" . }}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_PROTOCOL" $values.telemetry.protocol }}
{{- end }}
{{- if and .uses.database (include "eventfn.databaseEnabled" $root) }}
{{- $db := $values.database }}
{{- if $db.external.enabled }}
{{- $_ := set $env "EVENTFN_DATABASE_URL" (dict "secretKeyRef" (dict "name" $db.external.secretName "key" $db.external.key)) }}
{{- else }}
{{- $_ := set $env "EVENTFN_DATABASE_URL" (dict "secretKeyRef" (dict "name" (include "eventfn.postgresqlName" $root) "key" "url")) }}
{{- end }}
{{- if $db.migrations.enabled }}
{{- $_ := set $env "EVENTFN_AUTO_MIGRATE" "false" }}
{{- end }}
{{- end }}
{{- if .uses.objectStorage }}
{{- $os := $values.objectStorage }}
{{- $_ := set $env "EVENTFN_BUCKET" $os.bucket }}
{{- $_ := set $env "AWS_REGION" $os.region }}
{{- with include "eventfn.s3Endpoint" $root }}
{{- $_ := set $env "EVENTFN_S3_ENDPOINT_URL" . }}
{{- end }}
{{- if $os.credentials.secretName }}
{{- $_ := set $env "AWS_ACCESS_KEY_ID" (dict "secretKeyRef" (dict "name" $os.credentials.secretName "key" $os.credentials.accessKeyIdKey)) }}
{{- $_ := set $env "AWS_SECRET_ACCESS_KEY" (dict "secretKeyRef" (dict "name" $os.credentials.secretName "key" $os.credentials.secretAccessKeyKey)) }}
{{- else if $os.minio.enabled }}
{{- $_ := set $env "AWS_ACCESS_KEY_ID" (dict "secretKeyRef" (dict "name" (include "eventfn.minioName" $root) "key" "functions-access-key")) }}
{{- $_ := set $env "AWS_SECRET_ACCESS_KEY" (dict "secretKeyRef" (dict "name" (include "eventfn.minioName" $root) "key" "functions-secret-key")) }}
{{- end }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/*
Container env entries from a map NAME -> value | {secretKeyRef|configMapKeyRef: ...}, sorted by
name. Call with the map.
*/}}
{{- define "eventfn.envList" -}}
{{- range $key, $value := . }}
- name: {{ $key }}
  {{- if kindIs "map" $value }}
  valueFrom:
    {{- toYaml $value | nindent 4 }}
  {{- else }}
  value: {{ $value | toString | quote }}
  {{- end }}
{{- end }}
{{- end }}

{{/*
Labels that let the NetworkPolicies pick a workload's pods as clients of the shared services.
Call with (dict "root" $ "uses" $uses); $uses.broker false leaves out the broker.
*/}}
{{- define "eventfn.clientLabels" -}}
{{- if or (not (hasKey .uses "broker")) .uses.broker }}
eventfn.dev/broker-client: "true"
{{- end }}
{{- if and .uses.database .root.Values.database.postgresql.enabled }}
eventfn.dev/database-client: "true"
{{- end }}
{{- if and .uses.objectStorage .root.Values.objectStorage.minio.enabled }}
eventfn.dev/storage-client: "true"
{{- end }}
{{- if and .root.Values.telemetry.collector.enabled (not .root.Values.telemetry.otlpEndpoint) }}
eventfn.dev/telemetry-client: "true"
{{- end }}
{{- if .uses.services }}
eventfn.dev/service-client: "true"
{{- end }}
{{- end }}

{{/*
The securityContext of every container the chart runs besides functions (Pod Security
"restricted" plus a read-only root filesystem). Call with the UID.
*/}}
{{- define "eventfn.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
The pod-level securityContext of those pods. Call with the UID.
*/}}
{{- define "eventfn.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
A Secret value kept across upgrades: the given value, else the one already in the cluster
(lookup; empty when rendering offline), else a random one. Returns it base64-encoded.
Call with (dict "root" $ "secret" "name" "key" "k" "value" "v" "length" 24).
*/}}
{{- define "eventfn.secretValue" -}}
{{- if .value }}
{{- .value | b64enc }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .secret }}
{{- if and $existing (hasKey ($existing.data | default dict) .key) }}
{{- index $existing.data .key }}
{{- else }}
{{- randAlphaNum (int .length) | b64enc }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The collector's configuration: OTLP receivers, memory limiter and batch processors, the debug
exporter and, with telemetry.collector.forwardEndpoint, an OTLP/HTTP exporter.
*/}}
{{- define "eventfn.collectorConfig" -}}
{{- $collector := .Values.telemetry.collector }}
{{- $exporters := list "debug" }}
{{- if $collector.forwardEndpoint }}
{{- $exporters = append $exporters "otlphttp" }}
{{- end }}
{{- $config := dict
  "receivers" (dict "otlp" (dict "protocols" (dict "grpc" (dict "endpoint" "0.0.0.0:4317") "http" (dict "endpoint" "0.0.0.0:4318"))))
  "processors" (dict "memory_limiter" (dict "check_interval" "1s" "limit_percentage" 80 "spike_limit_percentage" 25) "batch" dict)
  "exporters" (dict "debug" (dict "verbosity" $collector.debugVerbosity))
  "extensions" (dict "health_check" (dict "endpoint" "0.0.0.0:13133"))
  "service" (dict
    "extensions" (list "health_check")
    "pipelines" (dict "traces" (dict "receivers" (list "otlp") "processors" (list "memory_limiter" "batch") "exporters" $exporters)))
}}
{{- with $collector.forwardEndpoint }}
{{- $_ := set $config.exporters "otlphttp" (dict "endpoint" .) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
checkov skip annotations (checkov.io/skipN: "CKV_ID=reason") of a pod-bearing object: the given
reasoned skips, plus CKV2_K8S_6 when networkPolicy.enabled is false. Empty when there are none.
Call with (dict "root" $ "skips" (list "CKV_K8S_8=reason" ...)).
*/}}
{{- define "eventfn.checkovSkips" -}}
{{- $skips := .skips | default list }}
{{- if not .root.Values.networkPolicy.enabled }}
{{- $skips = append $skips "CKV2_K8S_6=networkPolicy.enabled is false: this install leaves NetworkPolicies to the cluster's operator" }}
{{- end }}
{{- range $index, $skip := $skips }}
checkov.io/skip{{ add1 $index }}: {{ $skip | quote }}
{{- end }}
{{- end }}
