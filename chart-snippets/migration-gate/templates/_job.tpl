{{/*
migration-gate.job: the migration Job, a complete manifest.

An ordinary release resource, not a Helm hook: Helm creates it next to the
Deployments and returns, the new pods wait in Init for it, the old pods keep
serving. (A pre-upgrade hook would block helm until the migration ends, is
deleted and recreated under the same name, and a hook that fails leaves the
release half-upgraded.)

Its name is "<prefix>-migrate-<hash>", the hash of the rendered pod template
and podFailurePolicy below plus migration.runId (migration-gate.jobName):
an upgrade that leaves the migration alone finds the same Job and changes
only its metadata (the release-revision label); one that changes it creates
a new Job, and Helm deletes the old one (no resource-policy keep by default,
so that helm rollback works: helm/helm#8228).
*/}}

{{/* The Job's pod template (spec.template), at indentation 0. */}}
{{- define "migration-gate.jobPodTemplate" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- $m := $v.migration -}}
metadata:
  labels:
    {{- include "migration-gate.podLabels" (dict "root" . "component" "migration") | nindent 4 }}
    {{- with $m.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $m.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  restartPolicy: Never
  serviceAccountName: {{ include "migration-gate.migrationServiceAccountName" . }}
  {{- with $m.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $m.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $m.podSecurityContext | nindent 4 }}
  containers:
    - name: migrate
      image: {{ include "migration-gate.migrationImage" . | quote }}
      imagePullPolicy: {{ $m.image.pullPolicy | default "IfNotPresent" }}
      # migrate-runner runs the command as a correct PID 1, holds the
      # Lease while it runs and records the outcome for wait-for-job.
      # Its options come from the MR_* environment below.
      command:
        - {{ $m.runner }}
      args:
        - --
        {{- range $m.command }}
        - {{ . | toString | quote }}
        {{- end }}
      env:
        # The record key: the Job's name, from the label the Job
        # controller puts on its pods.
        - name: JOB_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.labels['{{ $m.jobNameLabel }}']
        # The Lease holder identity and the record's "pod".
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        # --record: the outcome, for wait-for-job once this Job is gone.
        - name: MR_RECORD
          value: {{ include "migration-gate.recordName" . | quote }}
        {{- with $m.record.maxKeys }}
        - name: MR_RECORD_MAX_KEYS
          value: {{ int . | quote }}
        {{- end }}
        {{- if $m.lock.enabled }}
        # --lock: never two migrations at once (a retry, an overlapping
        # upgrade); exit 75 after MR_LOCK_TIMEOUT (default 10m).
        - name: MR_LOCK
          value: {{ include "migration-gate.leaseName" . | quote }}
        {{- with include "migration-gate.envDuration" (list "MR_LOCK_TIMEOUT" $m.lock.timeout) }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with include "migration-gate.envDuration" (list "MR_LOCK_LEASE" $m.lock.lease) }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- end }}
        {{- with include "migration-gate.envDuration" (list "MR_TIMEOUT" $m.timeout) }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with include "migration-gate.envDuration" (list "MR_GRACE" $m.grace) }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with $m.waitTcp }}
        - name: MR_WAIT_TCP
          value: {{ join "," . | quote }}
        {{- end }}
        {{- with include "migration-gate.envDuration" (list "MR_WAIT_TIMEOUT" $m.waitTimeout) }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with $m.sidecar }}
        - name: MR_SIDECAR
          value: {{ . | quote }}
        {{- end }}
        {{- if $m.sidecarWait }}
        - name: MR_SIDECAR_WAIT
          value: "1"
        {{- end }}
        {{- if and $m.logFormat (ne $m.logFormat "text") }}
        - name: MR_LOG_FORMAT
          value: {{ $m.logFormat | quote }}
        {{- end }}
        {{- with $m.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $m.envFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      # migrate-runner writes a JSON summary (<= 4096 bytes) here.
      terminationMessagePath: /dev/termination-log
      terminationMessagePolicy: File
      resources:
        {{- toYaml $m.resources | nindent 8 }}
      securityContext:
        {{- toYaml $m.securityContext | nindent 8 }}
      {{- if or $m.tmpVolume.enabled $m.extraVolumeMounts }}
      volumeMounts:
        {{- if $m.tmpVolume.enabled }}
        - name: tmp
          mountPath: /tmp
        {{- end }}
        {{- with $m.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
  {{- if or $m.tmpVolume.enabled $m.extraVolumes }}
  volumes:
    {{- if $m.tmpVolume.enabled }}
    - name: tmp
      emptyDir: {{ if $m.tmpVolume.sizeLimit }}{ sizeLimit: {{ $m.tmpVolume.sizeLimit }} }{{ else }}{}{{ end }}
    {{- end }}
    {{- with $m.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  {{- with $m.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $m.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $m.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* The Job's podFailurePolicy, at indentation 0. */}}
{{- define "migration-gate.jobPodFailurePolicy" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- $m := $v.migration -}}
podFailurePolicy:
  rules:
    {{- with $m.podFailurePolicy.extraRules }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with $m.podFailurePolicy.failJobExitCodes }}
    # Usage (64), configuration/RBAC (78), not executable (126), not
    # found (127): a retry cannot help, fail the Job at once.
    - action: FailJob
      onExitCodes:
        containerName: migrate
        operator: In
        values: {{ toJson . }}
    {{- end }}
    # 75: the Lease (another migration holds it) or a --wait-tcp
    # dependency timed out; retriable.
    - action: {{ $m.podFailurePolicy.onTempfail }}
      onExitCodes:
        containerName: migrate
        operator: In
        values: [75]
    {{- if $m.podFailurePolicy.ignoreDisruptions }}
    # Evicted, preempted or drained: not the migration's fault.
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
    {{- end }}
{{- end -}}

{{- define "migration-gate.job" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- if $v.enabled -}}
{{- $m := $v.migration -}}
{{- if not $m.command -}}
{{- fail "migration-gate: set migrationGate.migration.command, the migration command and its arguments (e.g. [\"./migrate\", \"up\"])" -}}
{{- end -}}
{{- $prev := 0 -}}
{{- range $m.podFailurePolicy.failJobExitCodes | default list -}}
{{- if le (int .) $prev -}}
{{- fail "migration-gate: migration.podFailurePolicy.failJobExitCodes must be in ascending order without duplicates (a Kubernetes rule for onExitCodes values)" -}}
{{- end -}}
{{- $prev = int . -}}
{{- end -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "migration-gate.jobName" . }}
  labels:
    {{- include "migration-gate.labels" (dict "root" . "component" "migration") | nindent 4 }}
    # The revision that last applied this Job (metadata is mutable: an
    # upgrade that keeps the migration relabels the same Job). release-check
    # reads it.
    migration-gate.io/release-revision: {{ .Release.Revision | quote }}
    {{- with $m.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if or $m.keepPreviousJobs $m.annotations }}
  annotations:
    {{- if $m.keepPreviousJobs }}
    # Opt-in: a later upgrade leaves this Job alone instead of deleting it.
    # helm rollback to a revision whose Job is still here then fails
    # ("original object Job ... not found", helm/helm#8228): delete that
    # Job first.
    helm.sh/resource-policy: keep
    {{- end }}
    {{- with $m.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
spec:
  backoffLimit: {{ int $m.backoffLimit }}
  activeDeadlineSeconds: {{ int $m.activeDeadlineSeconds }}
  {{- if not (kindIs "invalid" $m.ttlSecondsAfterFinished) }}
  # Pods that start after this (node drain, scale-up) read the outcome
  # record instead of the Job.
  ttlSecondsAfterFinished: {{ int $m.ttlSecondsAfterFinished }}
  {{- end }}
  # Evaluated in order, first match wins; needs restartPolicy: Never.
  # Exit codes are migrate-runner's: the migration's own code unchanged,
  # 128+N for signal N, 124 for its --timeout; those are ordinary failures,
  # counted against backoffLimit.
  {{- include "migration-gate.jobPodFailurePolicy" . | nindent 2 }}
  template:
    {{- include "migration-gate.jobPodTemplate" . | nindent 4 }}
{{- end -}}
{{- end -}}
