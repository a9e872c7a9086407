#!/bin/sh
# Everything after lint and the unit tests: fuzz smoke runs, kubesim's own
# tests with the real kubectl and helm, black-box tests of the static
# binaries (and of the OCI images), the black-box suite against ASan/UBSan
# and valgrind builds, the real-control-plane tier, and a short soak.
#
# It closes with every skipped step and skipped test, each with its reason,
# and then one line "N passed, N failed, N skipped" over all suites (unit
# tests included). A skipped step counts as one skip; a step that fails
# without recording a test result counts as one failure.
#
#   MG_SKIP="valgrind soak"   skip some steps (names as below); listed as
#                             skipped with the reason "MG_SKIP"
#                             (unit-valgrind: the unit tests under valgrind;
#                             valgrind skips them too)
#   MG_JOBS=N                 workers per Python suite (tests/pyrun.py; the
#                             real-control-plane suites: MG_JOBS_REAL, 1)
#   E2E_SAN_SUBSET=all        the sanitizer/valgrind passes run the whole
#                             black-box suite instead of the tests that
#                             drive the binaries (see tests/pyrun.py SUBSETS)
set -u
cd "$(dirname "$0")/.."
out=${MG_RESULTS:-build/test-results}
mkdir -p "$out"
: >"$out/steps.skips"
status=0
skip=" ${MG_SKIP:-} "
: "${E2E_SAN_SUBSET:=binaries}"
export E2E_SAN_SUBSET

# sum of the failed counts recorded so far
failed_so_far() {
	n=0
	for f in "$out"/*; do
		case "$f" in *.skips) continue ;; esac
		[ -f "$f" ] || continue
		read -r _name _p fl _rest <"$f"
		n=$((n + ${fl:-0}))
	done
	echo "$n"
}

# run_step NAME DESCRIPTION SKIP_REASON COMMAND [ARG...]
# One step: skipped (and listed) when SKIP_REASON is not empty or NAME is in
# MG_SKIP; otherwise COMMAND runs and writes its results into $out. A new
# step is one more run_step line below.
run_step() {
	name=$1 desc=$2 why=$3
	shift 3
	case "$skip" in *" $name "*) why="MG_SKIP" ;; esac
	if [ -n "$why" ]; then
		printf '\n=== %s: skipped (%s) ===\n' "$name" "$why"
		echo "step $name: $why" >>"$out/steps.skips"
		return 0
	fi
	printf '\n=== %s: %s ===\n' "$name" "$desc"
	start=$(date +%s) before=$(failed_so_far)
	"$@"
	rc=$?
	echo "($name took $(($(date +%s) - start))s)"
	[ "$rc" = 0 ] && return 0
	status=1
	if [ "$(failed_so_far)" = "$before" ]; then
		echo "step-$name 0 1 0 (exit $rc without a failed test recorded)" >"$out/step-$name"
	fi
}

# run_bg NAME RESULTS DESCRIPTION COMMAND [ARG...]
# CPU-bound steps (fuzzing, valgrind on the unit tests) started in the
# background, their commands under nice: they take only the CPU that the steps waiting on
# timeouts, watches and backoffs (kubesim, e2e) leave idle, so it costs no
# wall time of its own. wait_bg prints its output and "(NAME took Ns)" and
# counts it like run_step; RESULTS are the results files it writes.
bg_dir=$(mktemp -d) bg_names=""
run_bg() {
	name=$1
	printf '\n=== %s: %s (in the background, niced; its output follows e2e) ===\n' "$name" "$3"
	echo "$2" >"$bg_dir/$name.results"
	shift 3
	(
		start=$(date +%s)
		"$@" >"$bg_dir/$name.log" 2>&1
		echo $? >"$bg_dir/$name.rc"
		echo "($name took $(($(date +%s) - start))s)" >>"$bg_dir/$name.log"
	) &
	bg_names="$bg_names $name"
}
wait_bg() {
	wait
	for name in $bg_names; do
		printf '\n=== %s (ran in the background) ===\n' "$name"
		cat "$bg_dir/$name.log"
		rc=$(cat "$bg_dir/$name.rc" 2>/dev/null || echo 1)
		[ "$rc" = 0 ] && continue
		status=1
		n=0
		for r in $(cat "$bg_dir/$name.results"); do
			fl=0
			[ -f "$out/$r" ] && read -r _n _p fl _r <"$out/$r"
			n=$((n + ${fl:-0}))
		done
		[ "$n" = 0 ] && echo "step-$name 0 1 0 (exit $rc without a failed test recorded)" >"$out/step-$name"
	done
	bg_names=""
	rm -rf "$bg_dir"
}

# multi-command steps: every command runs, any failure fails the step
step_e2e() {
	rc=0
	make -s images || rc=1
	# the image tests' own tools (buildah, mmdebstrap, docker-registry):
	# without them test_images skips its Dockerfile and publish classes
	./tests/ensure-tools.sh images-test || rc=1
	python3 tests/pyrun.py e2e tests/e2e || rc=1
	return $rc
}
# the background steps (each skipped by its own name in MG_SKIP)
step_bg() {
	rc=0 sk=$skip
	# MG_SKIP=valgrind skips both valgrind passes
	case "$skip" in *" valgrind "*) sk="$skip unit-valgrind " ;; esac
	for st in fuzz unit-valgrind; do
		case "$sk" in
		*" $st "*) echo "step $st: MG_SKIP" >>"$out/steps.skips" ;;
		*) if [ $st = fuzz ]; then nice -n 10 make -s fuzz-smoke || rc=1; else
			nice -n 10 make -s check-unit-valgrind || rc=1; fi ;;
		esac
	done
	return $rc
}

# the real control plane (tests/realkube): built once (cached outside the
# clone), then its own tests with the real controllers, and the e2e suites
# with MG_BACKEND=real
step_realkube() {
	rc=0
	python3 tests/realkube/realkube.py build >/dev/null || return 1
	# each test class starts its own control plane: one at a time unless
	# MG_JOBS_REAL says otherwise (2 workers not yet measured here)
	MG_JOBS=${MG_JOBS_REAL:-1} python3 tests/pyrun.py realkube tests/realkube || rc=1
	MG_JOBS=${MG_JOBS_REAL:-1} MG_BACKEND=real MG_SUBSET=real python3 tests/pyrun.py e2e-real tests/e2e || rc=1
	return $rc
}

# why the real-control-plane tier cannot run here (empty: it can)
realkube_unavailable() {
	if [ ! -d tests/realkube ]; then
		echo "tests/realkube does not exist"
	elif ! command -v go >/dev/null 2>&1; then
		echo "go is not on PATH (the control plane is built from source with Go)"
	elif ! ls tests/realkube/test_*.py >/dev/null 2>&1; then
		echo "no test_*.py in tests/realkube yet"
	fi
}

# fuzz, then the unit tests under valgrind, beside kubesim and e2e
run_bg fuzz+unit-valgrind "fuzz unit-valgrind" "libFuzzer smoke, ${FUZZ_SECONDS:-15}s per target; the unit tests under valgrind" step_bg
run_step kubesim "the fake API server with the real kubectl and helm" "" python3 tests/pyrun.py kubesim tests/kubesim
run_step e2e "black-box tests of the static binaries, the chart and the images" "" step_e2e
wait_bg
run_step asan "the black-box suite against ASan/UBSan builds (subset: $E2E_SAN_SUBSET)" "" make -s check-e2e-asan
run_step valgrind "the black-box suite (subset: $E2E_SAN_SUBSET) under valgrind memcheck" "" make -s check-e2e-valgrind
run_step realkube "the black-box suites on a real kube-apiserver, controllers and etcd" "$(realkube_unavailable)" \
	step_realkube
run_step soak "${SOAK_SECONDS:-60}s of waiters against injected faults" "" make -s soak SOAK_SECONDS="${SOAK_SECONDS:-60}"

printf '\n=== summary ===\n'
passed=0 failed=0 skipped=0
for f in "$out"/*; do
	case "$f" in *.skips) continue ;; esac
	[ -f "$f" ] || continue
	read -r name p fl s note <"$f"
	printf '%-14s %4s passed, %s failed, %s skipped%s\n' "$name" "$p" "$fl" "${s:-0}" "${note:+ $note}"
	passed=$((passed + p))
	failed=$((failed + fl))
	skipped=$((skipped + ${s:-0}))
done
if [ -f "$out/steps.skips" ]; then
	skipped=$((skipped + $(wc -l <"$out/steps.skips")))
fi
if [ "$skipped" != 0 ]; then
	printf '\nskipped:\n'
	for f in "$out"/*.skips; do
		[ -f "$f" ] || continue
		suite=$(basename "$f" .skips)
		if [ "$suite" = steps ]; then sed 's/^/  /' "$f"; else sed "s|^|  $suite: |" "$f"; fi
	done
fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$failed" = 0 ] || status=1
exit $status
