{{- define "example-app.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: {{ .root.Release.Name }}
{{- end -}}

{{- define "example-app.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
One Deployment of the application; (dict "root" $ "component" "api").
The migration-gate lines are marked (1) (2) (3) (4).
*/}}
{{- define "example-app.deployment" -}}
{{- $root := .root -}}
{{- $c := index $root.Values .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $root.Release.Name }}-{{ .component }}
  labels:
    {{- include "example-app.labels" . | nindent 4 }}
spec:
  replicas: {{ int $c.replicas }}
  progressDeadlineSeconds: {{ int $root.Values.progressDeadlineSeconds }}
  selector:
    matchLabels:
      {{- include "example-app.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "example-app.labels" . | nindent 8 }}
    spec:
      # (1) The account the gate's Role is bound to; with
      # waitForJob.tokenOnlyInInitContainer its token is mounted into the
      # init container only (see (4)).
      serviceAccountName: {{ include "migration-gate.appServiceAccountName" $root }}
      {{- with include "migration-gate.automountServiceAccountToken" $root }}
      {{- . | nindent 6 }}
      {{- end }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      # (2) Wait for the release's migration Job before starting.
      initContainers:
        {{- include "migration-gate.initContainer" $root | nindent 8 }}
      containers:
        - name: {{ .component }}
          image: {{ include "migration-gate.image" (merge (dict "tag" ($root.Values.image.tag | default $root.Chart.AppVersion)) $root.Values.image) | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: {{ toJson $c.command }}
          {{- with $c.args }}
          args: {{ toJson . }}
          {{- end }}
          {{- with $c.port }}
          ports:
            - name: http
              containerPort: {{ int . }}
          {{- end }}
          {{- with $root.Values.env }}
          env:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $root.Values.envFrom }}
          envFrom:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $c.readinessProbe }}
          readinessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          resources:
            {{- toYaml $c.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir: {}
        {{- with include "migration-gate.tokenVolume" $root }}
        # (4) The init container's token (tokenOnlyInInitContainer).
        {{- . | nindent 8 }}
        {{- end }}
{{- end -}}
