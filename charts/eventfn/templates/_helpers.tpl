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
Image reference of a function: <repository>:<tag>; repository defaults to
<imageRegistry>/<name>, tag to the chart's appVersion. `latest` is refused.
Call with (dict "root" $ "name" "echo" "fn" $fn).
*/}}
{{- define "eventfn.image" -}}
{{- $repository := .fn.image.repository | default (printf "%s/%s" .root.Values.imageRegistry .name) }}
{{- $tag := .fn.image.tag | default .root.Chart.AppVersion | toString }}
{{- if or (eq $tag "latest") (hasSuffix ":latest" $repository) }}
{{- fail (printf "function %s: image tag `latest` is not allowed; pin a version (default: the chart appVersion)" .name) }}
{{- end }}
{{- printf "%s:%s" $repository $tag }}
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
