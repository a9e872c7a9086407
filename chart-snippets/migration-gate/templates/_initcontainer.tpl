{{/*
migration-gate.initContainer: the wait-for-job init container, a list item.
Put it in the pod spec of every Deployment/StatefulSet that needs the new
schema, and run those pods as migration-gate.appServiceAccountName:

      serviceAccountName: {{ include "migration-gate.appServiceAccountName" . }}
      initContainers:
        {{- include "migration-gate.initContainer" . | nindent 8 }}

It blocks until this revision's migration Job has succeeded (exit 0) and
fails the pod start when the Job failed (exit 1), so the new ReplicaSet
never serves on an unmigrated schema while the old one keeps serving. When
the Job is gone (ttlSecondsAfterFinished), the outcome record decides.
*/}}
{{- define "migration-gate.initContainer" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- if $v.enabled -}}
{{- $w := $v.waitForJob -}}
- name: wait-for-migration
  image: {{ include "migration-gate.image" $v.images.waitForJob | quote }}
  imagePullPolicy: {{ $v.images.waitForJob.pullPolicy }}
  # wait-for-job takes its options from the environment (the same as
  # "wait-for-job --record RECORD [--timeout D] JOB"), so that kustomize
  # replacements can find them by name.
  env:
    # This revision's migration Job.
    - name: WAIT_FOR_JOB_NAME
      value: {{ include "migration-gate.jobName" . | quote }}
    # --record: the outcome migrate-runner recorded, for when the Job was
    # deleted (ttlSecondsAfterFinished) before this pod started.
    - name: WAIT_FOR_JOB_RECORD
      value: {{ include "migration-gate.recordName" . | quote }}
    {{- with include "migration-gate.envDuration" (list "WAIT_FOR_JOB_TIMEOUT" $w.timeout) }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- if and $w.logFormat (ne $w.logFormat "text") }}
    - name: WAIT_FOR_JOB_LOG_FORMAT
      value: {{ $w.logFormat | quote }}
    {{- end }}
  # On failure the last lines (the Job's reason, the migration's exit code
  # and output tail) become the pod's termination message.
  terminationMessagePolicy: FallbackToLogsOnError
  resources:
    {{- toYaml $w.resources | nindent 4 }}
  securityContext:
    {{- toYaml $w.securityContext | nindent 4 }}
{{- end -}}
{{- end -}}
