#!/usr/bin/env bash
# Run docker/Dockerfile's build stage without Docker, then check what it installed.
#
# The same Python version as the stage's base image (python:3.11-slim -> python3.11), the
# same files where its COPY lines put them, and its RUN lines, word for word, with the
# environment in a temporary $PREFIX instead of /opt/shadow. Then the installed `shadow`
# must answer --help and --version, and run `shadow demo` from the wheel's own files and
# find the two seeded bugs. What this cannot check: the runtime stage (user, STOPSIGNAL,
# ENTRYPOINT), the base image's own contents, and the build inside Docker itself.
#
#   docker/build-steps.sh          # PYTHON=/path/to/python3.11 to choose the interpreter
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DOCKERFILE=$ROOT/docker/Dockerfile

fail() { echo "build-steps: $*" >&2; exit 1; }

base=$(awk 'toupper($1) == "FROM" && tolower($NF) == "build" { print $2; exit }' "$DOCKERFILE")
[[ $base == python:* ]] || fail "the build stage's base is not a python image: '$base'"
version=${base#python:}
version=${version%%-*}
PYTHON=${PYTHON:-$(command -v "python$version" || true)}
[ -n "$PYTHON" ] || fail "python$version (the base image's version) is not installed"
"$PYTHON" -c "import sys; v = '.'.join(map(str, sys.version_info[:2])); assert v == '$version', v" \
  || fail "$PYTHON is not Python $version"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export PREFIX=$WORK/prefix
SRC=$WORK/root  # stands for the image's /
mkdir -p "$WORK/bin" "$SRC"
ln -s "$PYTHON" "$WORK/bin/python"  # the image's `python`
export PATH=$WORK/bin:$PATH

copy() {  # COPY SRC... DEST, sources from the repository, dest under the stage's WORKDIR
  local args=("$@") dest=${*: -1}
  local target=$cwd/$dest
  unset 'args[${#args[@]}-1]'
  if [[ $dest == */ ]] || [ ${#args[@]} -gt 1 ]; then
    mkdir -p "$target"
    for src in "${args[@]}"; do cp -r "$ROOT/$src" "$target/"; done
  elif [ -d "$ROOT/${args[0]}" ]; then
    mkdir -p "$target" && cp -r "$ROOT/${args[0]}/." "$target/"
  else
    mkdir -p "$(dirname "$target")" && cp "$ROOT/${args[0]}" "$target"
  fi
  find "$target" -name __pycache__ -prune -exec rm -rf {} +  # as .dockerignore
}

cwd=$SRC
steps=0
while IFS= read -r line; do
  [[ $line == *\\ ]] && fail "line continuations are not supported here: $line"
  read -r instruction rest <<<"$line"
  case ${instruction^^} in
    ARG) [[ ${rest%%=*} == PREFIX ]] || export "${rest?}" ;;
    WORKDIR) cwd=$SRC$rest && mkdir -p "$cwd" ;;
    COPY) read -ra words <<<"$rest" && copy "${words[@]}" ;;
    RUN)
      echo "+ RUN $rest" >&2
      (cd "$cwd" && bash -euo pipefail -c "$rest") || fail "step failed: RUN $rest"
      steps=$((steps + 1))
      ;;
    *) fail "unsupported instruction in the build stage: $line" ;;
  esac
done < <(awk 'toupper($1) == "FROM" { n++; next } n == 1 && NF && $1 !~ /^#/' "$DOCKERFILE")
[ "$steps" -gt 0 ] || fail "no RUN step found in the build stage"

"$PREFIX/bin/shadow" --help >/dev/null || fail "shadow --help failed"
"$PREFIX/bin/shadow" --version
code=0
(cd "$WORK" && "$PREFIX/bin/shadow" demo -q --run-dir "$WORK/run" >"$WORK/demo.jsonl") || code=$?
[ "$code" -eq 1 ] || fail "shadow demo exited $code, expected 1 (the two seeded bugs)"
"$PREFIX/bin/python" - "$WORK/demo.jsonl" <<'PY' || fail "shadow demo did not find the two seeded bugs"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
finished = events[-1]
assert finished["event"] == "run_finished", finished["event"]
assert (finished["requests"], finished["mismatched"]) == (13, 2), finished
PY
echo "build-steps: the Dockerfile's build stage ($steps RUN steps) installs a working shadow" >&2
