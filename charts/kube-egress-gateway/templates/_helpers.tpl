{{/* Prefix of every object name. */}}
{{- define "keg.fullname" -}}
{{- default "kube-egress-gateway" .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "keg.labels" -}}
app.kubernetes.io/name: kube-egress-gateway
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: include "keg.selector" (list . "operator"). */}}
{{- define "keg.selector" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: kube-egress-gateway
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Image of one component: include "keg.image" (list . .Values.operator.image). */}}
{{- define "keg.image" -}}
{{- $root := index . 0 -}}
{{- $img := index . 1 -}}
{{- $repo := default $root.Values.image.repository $img.repository -}}
{{- $tag := default (default $root.Chart.AppVersion $root.Values.image.tag) $img.tag -}}
{{- if $repo -}}
{{- printf "%s/%s:%s" (trimSuffix "/" $repo) $img.name $tag -}}
{{- else -}}
{{- printf "%s:%s" $img.name $tag -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret holding the cloud config. */}}
{{- define "keg.azureSecret" -}}
{{- default (printf "%s-azure-config" (include "keg.fullname" .)) .Values.azureConfig.existingSecret -}}
{{- end -}}

{{/* Downward-API environment every component gets. */}}
{{- define "keg.podEnv" -}}
- name: MY_POD_NAMESPACE
  valueFrom:
    fieldRef: {fieldPath: metadata.namespace}
- name: MY_POD_NAME
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
- name: MY_NODE_NAME
  valueFrom:
    fieldRef: {fieldPath: spec.nodeName}
{{- end -}}

{{/* imagePullSecrets block. */}}
{{- define "keg.pullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- end -}}
