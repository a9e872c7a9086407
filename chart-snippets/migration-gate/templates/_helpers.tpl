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

{{/*
Object name prefix: namePrefix or the release name. Longer than 40
characters, it becomes its first 33 characters, "-" and 6 hex digits of the
sha256 of the whole name, so that two long names never share a prefix and
"<prefix>-migrate-<10 hex>" (at most 59) stays a valid label value.
*/}}
{{- define "migration-gate.prefix" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- $p := $v.namePrefix | default .Release.Name -}}
{{- if gt (len $p) 40 -}}
{{- printf "%s-%s" ($p | trunc 33 | trimSuffix "-") (sha256sum $p | trunc 6) -}}
{{- else -}}
{{- $p -}}
{{- end -}}
{{- end -}}

{{/*
The identity of the migration: 10 hex digits of the sha256 of everything a
Kubernetes API server will not let change in an existing Job (its pod
template: image, command, arguments, environment, volumes and mounts,
account, security settings...; the podFailurePolicy) plus migration.runId.
Same hash = the same migration: Helm finds the Job it already created and
only relabels it (metadata is mutable), the init containers keep their
arguments and no app pod restarts. Anything that changes the hash needs a
new Job anyway: the old one's template is immutable.
*/}}
{{- define "migration-gate.migrationHash" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- $in := printf "%s\n---\n%s\n---\nrunId: %s" (include "migration-gate.jobPodTemplate" .) (include "migration-gate.jobPodFailurePolicy" .) (toString ($v.migration.runId | default "")) -}}
{{- sha256sum $in | trunc 10 -}}
{{- end -}}

{{/*
The migration Job: "<prefix>-migrate-<hash of the migration>". The init
containers wait for exactly this name.
*/}}
{{- define "migration-gate.jobName" -}}
{{- printf "%s-migrate-%s" (include "migration-gate.prefix" .) (include "migration-gate.migrationHash" .) -}}
{{- end -}}

{{/*
The Job names the application Role allows, newest first: this migration's
Job; up to rbac.previousJobs names the Role of the running release allowed
(read with lookup, so pods of an older ReplicaSet that restart mid-rollout
still pass their gate; `helm template` has no cluster and carries nothing
over); rbac.extraJobNames. Returned as a JSON list.
*/}}
{{- define "migration-gate.allowedJobNames" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- $prefix := include "migration-gate.prefix" . -}}
{{- $cur := include "migration-gate.jobName" . -}}
{{- $extra := $v.rbac.extraJobNames | default list -}}
{{- $prev := list -}}
{{- $role := lookup "rbac.authorization.k8s.io/v1" "Role" .Release.Namespace (printf "%s-wait-for-migration" $prefix) -}}
{{- range (($role | default dict).rules | default list) -}}
{{- if and (has "jobs" (.resources | default list)) (has "batch" (.apiGroups | default list)) -}}
{{- range .resourceNames | default list -}}
{{- if and (ne . $cur) (not (has . $extra)) (hasPrefix (printf "%s-migrate-" $prefix) .) -}}
{{- $prev = append $prev . -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $prev = $prev | uniq -}}
{{- $n := int ($v.rbac.previousJobs | default 0) -}}
{{- if gt (len $prev) $n -}}
{{- $prev = slice $prev 0 $n -}}
{{- end -}}
{{- concat (list $cur) $prev $extra | uniq | toJson -}}
{{- end -}}

{{/* The outcome-record ConfigMap (migrate-runner --record, wait-for-job --record). */}}
{{- define "migration-gate.recordName" -}}
{{- printf "%s-migrations" (include "migration-gate.prefix" .) -}}
{{- end -}}

{{/* The Lease that serialises migrations (migrate-runner --lock). */}}
{{- define "migration-gate.leaseName" -}}
{{- printf "%s-migrate" (include "migration-gate.prefix" .) -}}
{{- end -}}

{{/*
The application pods' ServiceAccount: use it as serviceAccountName. With
enabled: false nothing creates "<prefix>-app": serviceAccounts.app.name, or
"default".
*/}}
{{- define "migration-gate.appServiceAccountName" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- if $v.enabled -}}
{{- $v.serviceAccounts.app.name | default (printf "%s-app" (include "migration-gate.prefix" .)) -}}
{{- else -}}
{{- $v.serviceAccounts.app.name | default "default" -}}
{{- end -}}
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

{{/*
Labels of the Job's pods: the standard labels without the chart and app
versions, which would change the immutable pod template (and with it the
migration's hash) on every chart release.
*/}}
{{- define "migration-gate.podLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: {{ .root.Release.Name }}
{{- end -}}

{{/* "repository:tag" or "repository@digest" of an image dict. */}}
{{- define "migration-gate.image" -}}
{{- if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository (toString (.tag | default "latest")) -}}
{{- end -}}
{{- end -}}

{{/*
The wait-for-job image: images.registry + "/" + images.waitForJob.repository
(a repository that names its own registry host is used as it is). There is
no public default: an unset or placeholder registry fails the rendering
instead of producing pods that can never pull their image.
*/}}
{{- define "migration-gate.waitForJobImage" -}}
{{- $v := include "migration-gate.valuesJson" . | fromJson -}}
{{- $img := $v.images.waitForJob -}}
{{- $repo := $img.repository -}}
{{- $first := regexFind "^[^/]+" $repo -}}
{{- if not (and (contains "/" $repo) (or (contains "." $first) (contains ":" $first) (eq $first "localhost"))) -}}
{{- $reg := $v.images.registry | default "" | trimSuffix "/" -}}
{{- if not $reg -}}
{{- fail "migration-gate: set migrationGate.images.registry to where the migration-gate images were pushed (make publish REGISTRY=<that> TAG=<tag>), e.g. ghcr.io/acme/migration-gate; there is no public default" -}}
{{- end -}}
{{- if regexMatch "(^|[./])(invalid|example)([/:.]|$)|example\\.(com|org|net)([/:]|$)|^REGISTRY([/:]|$)|/ORG(/|$)" $reg -}}
{{- fail (printf "migration-gate: migrationGate.images.registry %q is a placeholder: set it to the registry and path the migration-gate images were pushed to (make publish REGISTRY=<that>)" $reg) -}}
{{- end -}}
{{- $repo = printf "%s/%s" $reg $repo -}}
{{- end -}}
{{- include "migration-gate.image" (merge (dict "repository" $repo) $img) -}}
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
