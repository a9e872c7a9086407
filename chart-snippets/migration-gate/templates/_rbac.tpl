{{/*
migration-gate.serviceAccounts, migration-gate.rbac: two ServiceAccounts,
two Roles, two RoleBindings, all namespaced, no wildcards.

  application pods (wait-for-job): get/list/watch on the migration Jobs by
    name and on the record ConfigMap by name;
  migration Job (migrate-runner): get/update on the record ConfigMap and the
    Lease by name (Helm creates both).

resourceNames and list/watch: a list or watch is authorised against
resourceNames only when it carries fieldSelector=metadata.name=<name>, which
the API server then treats as a request for that one name. wait-for-job
narrows every list and watch that way, so a rule restricted to the name is
all it needs; an unnarrowed list would be denied.

create cannot be restricted: the name of an object being created is not
part of the authorisation request, so a "create" rule with resourceNames
never matches. Helm therefore creates the Lease (migration-gate.lease) and
the record ConfigMap (migration.record.create), and no Role needs "create".
*/}}
{{- define "migration-gate.serviceAccounts" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- if $v.enabled -}}
{{- $sas := list -}}
{{- if $v.serviceAccounts.app.create -}}
{{- $sas = append $sas (dict "name" (include "migration-gate.appServiceAccountName" .) "component" "app" "annotations" $v.serviceAccounts.app.annotations) -}}
{{- end -}}
{{- if $v.serviceAccounts.migration.create -}}
{{- $sas = append $sas (dict "name" (include "migration-gate.migrationServiceAccountName" .) "component" "migration" "annotations" $v.serviceAccounts.migration.annotations) -}}
{{- end -}}
{{- range $i, $sa := $sas }}
{{- if $i }}
---
{{- end }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $sa.name }}
  labels:
    {{- include "migration-gate.labels" (dict "root" $ "component" $sa.component) | nindent 4 }}
  {{- with $sa.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}
{{- end -}}

{{- define "migration-gate.rbac" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- if and $v.enabled $v.rbac.create -}}
{{- $prefix := include "migration-gate.prefix" . -}}
{{- $record := include "migration-gate.recordName" . -}}
{{- $appSA := include "migration-gate.appServiceAccountName" . -}}
{{- $migSA := include "migration-gate.migrationServiceAccountName" . -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $prefix }}-wait-for-migration
  labels:
    {{- include "migration-gate.labels" (dict "root" . "component" "app") | nindent 4 }}
rules:
  # wait-for-job: the release's migration Job (and the previous ones, for
  # pods of older ReplicaSets that restart mid-rollout). Every list and
  # watch carries fieldSelector=metadata.name=<job>, which is what lets
  # resourceNames restrict list and watch.
  - apiGroups: ["batch"]
    resources: ["jobs"]
    {{- if not $v.rbac.allJobs }}
    resourceNames: {{ include "migration-gate.allowedJobNames" . }}
    {{- end }}
    verbs: ["get", "list", "watch"]
  # wait-for-job --record: the outcome, once the Job was deleted.
  - apiGroups: [""]
    resources: ["configmaps"]
    resourceNames: [{{ $record | quote }}]
    verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $prefix }}-wait-for-migration
  labels:
    {{- include "migration-gate.labels" (dict "root" . "component" "app") | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $prefix }}-wait-for-migration
subjects:
  - kind: ServiceAccount
    name: {{ $appSA }}
    namespace: {{ .Release.Namespace }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $prefix }}-migrate
  labels:
    {{- include "migration-gate.labels" (dict "root" . "component" "migration") | nindent 4 }}
rules:
  # migrate-runner --record: read, then update with the resourceVersion read.
  - apiGroups: [""]
    resources: ["configmaps"]
    resourceNames: [{{ $record | quote }}]
    verbs: ["get", "update"]
  {{- if not $v.migration.record.create }}
  # migrate-runner creates the record when it is missing. "create" cannot be
  # limited by resourceNames: this allows creating any ConfigMap in the
  # namespace. Set migration.record.create=true to let Helm create it.
  - apiGroups: [""]
    resources: ["configmaps"]
    verbs: ["create"]
  {{- end }}
  {{- if $v.migration.lock.enabled }}
  # migrate-runner --lock: take, renew and release the Lease (Helm
  # creates it: migration-gate.lease).
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    resourceNames: [{{ include "migration-gate.leaseName" . | quote }}]
    verbs: ["get", "update"]
  {{- end }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $prefix }}-migrate
  labels:
    {{- include "migration-gate.labels" (dict "root" . "component" "migration") | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $prefix }}-migrate
subjects:
  - kind: ServiceAccount
    name: {{ $migSA }}
    namespace: {{ .Release.Namespace }}
{{- end -}}
{{- end -}}
