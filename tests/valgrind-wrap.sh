#!/bin/sh
# Print a wrapper script that execs BINARY under valgrind memcheck (exec, so
# the PID and PID-1 behaviour are the binary's): any error or definite or
# possible leak makes it exit 99, which no test expects, and leaves a
# non-empty build/valgrind/<name>.<pid>.log that `make check-e2e-valgrind`
# prints and fails on.
bin=$1
name=$(basename "$bin")
logdir=$(cd "$(dirname "$bin")/.." && pwd)/valgrind
supp=$(cd "$(dirname "$0")" && pwd)/valgrind.supp
cat <<WRAP
#!/bin/sh
exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible \\
	--show-leak-kinds=definite,possible --suppressions="$supp" --log-file="$logdir/$name.%p.log" "$bin" "\$@"
WRAP
