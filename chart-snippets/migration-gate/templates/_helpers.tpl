{{/*
migration-gate: names, labels and images shared by the other templates.

Every public template takes the parent chart's root context (`.` at the top
of a template file, `$` inside a range) and reads its options from
.Values.migrationGate (the dependency's alias) or .Values.migration-gate.
*/}}

{{/* The options as JSON (templates can only return strings). */}}
{{- define "migration-gate.valuesJson" -}}
{{- $v := .Values.migrationGate | default (index .Values "migration-gate") -}}
{{- if not $v -}}
{{- fail "migration-gate: no options under .Values.migrationGate: declare the library in Chart.yaml dependencies with \"alias: migrationGate\" and run helm dependency build" -}}
{{- end -}}
{{- toJson $v -}}
{{- end -}}

{{/* Object name prefix: namePrefix or the release name, at most 40 characters. */}}
{{- define "migration-gate.prefix" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- $v.namePrefix | default .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Job-name suffix: migration.jobSuffix or the release revision. */}}
{{- define "migration-gate.jobSuffix" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- $s := toString ($v.migration.jobSuffix | default "") -}}
{{- if $s -}}
{{- $s | lower | replace "_" "-" | replace "." "-" | replace "+" "-" | trunc 14 | trimAll "-" -}}
{{- else -}}
{{- .Release.Revision -}}
{{- end -}}
{{- end -}}

{{/*
The migration Job of this revision. The init containers wait for exactly
this name, so it must change on every upgrade: a Job's pod template is
immutable, and a new schema needs a new run.
*/}}
{{- define "migration-gate.jobName" -}}
{{- printf "%s-migrate-%s" (include "migration-gate.prefix" .) (include "migration-gate.jobSuffix" .) -}}
{{- end -}}

{{/*
The Job names the application Role allows, newest first: this revision's,
rbac.previousJobs earlier revisions' (pods of an older ReplicaSet that
restart mid-rollout still wait for their own Job) and rbac.extraJobNames.
Returned as a JSON list.
*/}}
{{- define "migration-gate.allowedJobNames" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- $prefix := include "migration-gate.prefix" . -}}
{{- $names := list (include "migration-gate.jobName" .) -}}
{{- if not $v.migration.jobSuffix -}}
{{- $rev := int .Release.Revision -}}
{{- range $i := untilStep 1 (add1 (int ($v.rbac.previousJobs | default 0)) | int) 1 -}}
{{- if ge (sub $rev $i | int) 1 -}}
{{- $names = append $names (printf "%s-migrate-%d" $prefix (sub $rev $i | int)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $v.rbac.extraJobNames | default list -}}
{{- $names = append $names . -}}
{{- end -}}
{{- $names | uniq | toJson -}}
{{- end -}}

{{/* The outcome-record ConfigMap (migrate-runner --record, wait-for-job --record). */}}
{{- define "migration-gate.recordName" -}}
{{- printf "%s-migrations" (include "migration-gate.prefix" .) -}}
{{- end -}}

{{/* The Lease that serialises migrations (migrate-runner --lock). */}}
{{- define "migration-gate.leaseName" -}}
{{- printf "%s-migrate" (include "migration-gate.prefix" .) -}}
{{- end -}}

{{/* The application pods' ServiceAccount: use it as serviceAccountName. */}}
{{- define "migration-gate.appServiceAccountName" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- $v.serviceAccounts.app.name | default (printf "%s-app" (include "migration-gate.prefix" .)) -}}
{{- end -}}

{{/* The migration Job's ServiceAccount. */}}
{{- define "migration-gate.migrationServiceAccountName" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- $v.serviceAccounts.migration.name | default (printf "%s-migrate" (include "migration-gate.prefix" .)) -}}
{{- end -}}

{{/* Standard labels; pass (dict "root" $ "component" "migration"). */}}
{{- define "migration-gate.labels" -}}
{{- $root := .root -}}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ $root.Chart.Name | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
{{- with $root.Chart.AppVersion }}
app.kubernetes.io/version: {{ . | toString | trunc 63 | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: {{ $root.Release.Name }}
{{- end -}}

{{/* "repository:tag" or "repository@digest" of an image dict. */}}
{{- define "migration-gate.image" -}}
{{- if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository (toString (.tag | default "latest")) -}}
{{- end -}}
{{- end -}}

{{/* The migration image: migration.image, else the parent chart's .Values.image. */}}
{{- define "migration-gate.migrationImage" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- $img := $v.migration.image -}}
{{- if not $img.repository -}}
{{- $img = .Values.image | default dict -}}
{{- if not $img.repository -}}
{{- fail "migration-gate: set migrationGate.migration.image.repository (or .Values.image.repository of your chart): the image with your migration command and migrate-runner" -}}
{{- end -}}
{{- $img = merge (dict "tag" (.Values.image.tag | default .Chart.AppVersion)) $img -}}
{{- end -}}
{{- include "migration-gate.image" $img -}}
{{- end -}}

{{/*
One env entry NAME=duration, unless the duration is unset (null or "").
0 is a duration ("check once" for wait-for-job), so no truthiness test.
*/}}
{{- define "migration-gate.envDuration" -}}
{{- $name := index . 0 -}}
{{- $val := index . 1 -}}
{{- if not (or (kindIs "invalid" $val) (and (kindIs "string" $val) (eq $val ""))) -}}
- name: {{ $name }}
  value: {{ toString $val | quote }}
{{- end -}}
{{- end -}}
