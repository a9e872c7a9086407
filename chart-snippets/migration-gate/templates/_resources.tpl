{{/*
migration-gate.recordConfigMap: the empty outcome-record ConfigMap.
migrate-runner adds one data key per migration Job (pruning the oldest);
Helm renders no "data", so neither a three-way merge nor a server-side apply
by a later upgrade touches those keys.
*/}}
{{- define "migration-gate.recordConfigMap" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- if and $v.enabled $v.migration.record.create -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "migration-gate.recordName" . }}
  labels:
    {{- include "migration-gate.labels" (dict "root" . "component" "migration") | nindent 4 }}
  annotations:
    # Written by migrate-runner: key = migration Job name, value = its
    # outcome as JSON. Read by wait-for-job once the Job is gone.
    migration-gate/purpose: {{ printf "outcome record of the %s-migrate-* Jobs" (include "migration-gate.prefix" .) | quote }}
{{- end -}}
{{- end -}}

{{/*
migration-gate.lease: the Lease migrate-runner --lock takes, created empty by
Helm (spec is migrate-runner's: Helm never renders it, so neither a
three-way merge nor a server-side apply touches the holder). Helm deletes it
on uninstall, so a reinstall starts without a stale holder, and the
migration's Role needs no namespace-wide "create" on leases.
*/}}
{{- define "migration-gate.lease" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- if and $v.enabled $v.migration.lock.enabled -}}
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: {{ include "migration-gate.leaseName" . }}
  labels:
    {{- include "migration-gate.labels" (dict "root" . "component" "migration") | nindent 4 }}
{{- end -}}
{{- end -}}

{{/*
migration-gate.resources: everything except the init container, as one
multi-document string. A template file with just this line is enough:

  {{ include "migration-gate.resources" . }}
*/}}
{{- define "migration-gate.resources" -}}
{{- $docs := list -}}
{{- range $t := list "migration-gate.serviceAccounts" "migration-gate.rbac" "migration-gate.recordConfigMap" "migration-gate.lease" "migration-gate.job" -}}
{{- $doc := include $t $ | trim -}}
{{- if $doc -}}
{{- $docs = append $docs $doc -}}
{{- end -}}
{{- end -}}
{{- join "\n---\n" $docs -}}
{{- end -}}
