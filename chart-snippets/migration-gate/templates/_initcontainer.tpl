{{/*
migration-gate.initContainer: the wait-for-job init container, a list item.
Put it in the pod spec of every Deployment/StatefulSet that needs the new
schema, and run those pods as migration-gate.appServiceAccountName:

      serviceAccountName: {{ include "migration-gate.appServiceAccountName" . }}
      initContainers:
        {{- include "migration-gate.initContainer" . | nindent 8 }}

It blocks until the release's migration Job has succeeded (exit 0) and
fails the pod start when the Job failed (exit 1), so the new ReplicaSet
never serves on an unmigrated schema while the old one keeps serving. When
the Job is gone (replaced by a newer migration, a TTL, deleted by hand),
the outcome record decides.
*/}}
{{- define "migration-gate.initContainer" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- if $v.enabled -}}
{{- $w := $v.waitForJob -}}
- name: wait-for-migration
  image: {{ include "migration-gate.waitForJobImage" . | quote }}
  imagePullPolicy: {{ $v.images.waitForJob.pullPolicy }}
  # The migration Job, "<prefix>-migrate-<hash of the migration>": the same
  # as long as the migration does not change, so an upgrade that leaves it
  # alone does not restart the pods. release-check reads this argument to
  # know the release's current Job.
  args:
    - {{ include "migration-gate.jobName" . | quote }}
  # The other options come from the environment (the same as
  # "wait-for-job --record RECORD [--timeout D] JOB"), so that kustomize
  # replacements can find them by name.
  env:
    # --record: the outcome migrate-runner recorded, for when the Job was
    # deleted (replaced, a TTL, by hand) before this pod started.
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
  {{- if $w.tokenOnlyInInitContainer }}
  # The pod does not automount the token; only this container gets it.
  volumeMounts:
    - name: migration-gate-token
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      readOnly: true
  {{- end }}
{{- end -}}
{{- end -}}

{{/*
With waitForJob.tokenOnlyInInitContainer: put these in the pod spec of the
gated workloads (both render nothing otherwise):

      {{- include "migration-gate.automountServiceAccountToken" . | nindent 6 }}
      volumes:
        {{- include "migration-gate.tokenVolume" . | nindent 8 }}

The volume is what the kubelet would mount everywhere (a bound, expiring,
rotated token, the cluster CA and the namespace), mounted into the init
container only.
*/}}
{{- define "migration-gate.automountServiceAccountToken" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- if and $v.enabled $v.waitForJob.tokenOnlyInInitContainer -}}
automountServiceAccountToken: false
{{- end -}}
{{- end -}}

{{- define "migration-gate.tokenVolume" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- if and $v.enabled $v.waitForJob.tokenOnlyInInitContainer -}}
- name: migration-gate-token
  projected:
    defaultMode: 0444
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: {{ int ($v.waitForJob.tokenExpirationSeconds | default 3600) }}
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                fieldPath: metadata.namespace
{{- end -}}
{{- end -}}
