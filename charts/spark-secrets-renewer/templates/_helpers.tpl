{{/* The chart's objects keep the names the renew service and `spark-secrets rbac` use (one release per cluster:
     its ClusterRoles and admission policies are cluster-wide). */}}
{{- define "renewer.name" -}}spark-secrets-renewer{{- end }}

{{- define "renewer.labels" -}}
app.kubernetes.io/name: spark-secrets-renewer
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "renewer.selector" -}}
app.kubernetes.io/name: spark-secrets-renewer
{{- end }}

{{- define "renewer.krb5ConfigMap" -}}
{{- if .Values.krb5.conf }}spark-secrets-renewer-krb5{{ else }}{{ required "krb5.existingConfigMap or krb5.conf is required" .Values.krb5.existingConfigMap }}{{ end }}
{{- end }}

{{- define "renewer.hadoopConfigMap" -}}
{{- if .Values.hadoopConf.files }}spark-secrets-renewer-hadoop-conf{{ else }}{{ required "hadoopConf.existingConfigMap or hadoopConf.files is required" .Values.hadoopConf.existingConfigMap }}{{ end }}
{{- end }}
