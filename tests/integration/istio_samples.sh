#!/usr/bin/env bash
# Conformance: every Istio sample of a kind meshd reads must validate.
#
# Runs `meshd ctl validate -f FILE` on each YAML file of the Istio samples corpus
# ($MESH_SRCDIR/../shared/istio-samples, i.e. shared/ beside the clone; override with
# MESH_ISTIO_SAMPLES). Warnings are fine, errors are not; other kinds (Deployment,
# Ingress...) are skipped by meshd with a note.
#   istio/                       must all pass (the test fails otherwise)
#   istio-api/, istio-1.8-convert-ingress/
#                                reported (documents passing / seen); a failure there
#                                fails the test too, since Istio accepts them
# The Go template traffic-mirroring-template.yaml gets its {{...}} placeholders
# substituted first. Exit 77 (skip) when the corpus is absent.
set -u
set -o pipefail
export LC_ALL=C

MESH_SRCDIR=${MESH_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MESH_BIN=${MESH_BIN:-$PWD/meshd}
SAMPLES=${MESH_ISTIO_SAMPLES:-$MESH_SRCDIR/../shared/istio-samples}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

if [ ! -d "$SAMPLES/istio" ]; then
    echo "SKIP: Istio samples not found at $SAMPLES (expected shared/ beside the clone)"
    exit 77
fi
if ! "$MESH_BIN" ctl validate --help 2>/dev/null | grep -q -- '--filename'; then
    echo "SKIP: $MESH_BIN has no 'ctl validate' command (main.c does not hand 'ctl' over)"
    exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/meshd-istio-samples.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT

n=0
failed=0
total_docs=0
total_valid=0

# validate FILE LABEL: one TAP line; the summary line counts the documents
validate() {
    local file=$1 label=$2 out rc summary valid skipped errors
    n=$((n + 1))
    out=$("$MESH_BIN" ctl validate -f "$file" 2>&1)
    rc=$?
    summary=$(printf '%s\n' "$out" | tail -n 1)
    valid=$(printf '%s\n' "$summary" | sed -n 's/^\([0-9]*\) resources* valid.*/\1/p')
    errors=$(printf '%s\n' "$summary" | sed -n 's/.* \([0-9]*\) errors*,.*/\1/p')
    skipped=$(printf '%s\n' "$summary" | sed -n 's/.* \([0-9]*\) documents* skipped.*/\1/p')
    total_valid=$((total_valid + ${valid:-0}))
    total_docs=$((total_docs + ${valid:-0} + ${errors:-0}))
    if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -q 'valid, 0 errors'; then
        echo "ok $n - $label: $summary"
    else
        failed=$((failed + 1))
        echo "not ok $n - $label (exit $rc)"
        printf '%s\n' "$out" | grep -v ': warning: \|: note: ' | sed 's/^/#   /'
    fi
    if printf '%s\n' "$out" | grep -q 'Sanitizer'; then
        failed=$((failed + 1))
        echo "not ok $n - $label: sanitizer report"
        printf '%s\n' "$out" | sed 's/^/#   /' | head -n 40
    fi
}

for dir in istio istio-api istio-1.8-convert-ingress; do
    [ -d "$SAMPLES/$dir" ] || { echo "# $dir: absent"; continue; }
    before_docs=$total_docs
    before_valid=$total_valid
    before_failed=$failed
    files=0
    while IFS= read -r -d '' f; do
        rel=${f#"$SAMPLES"/}
        files=$((files + 1))
        case "$f" in
        */traffic-mirroring-template.yaml)
            # a Go template: substitute what the test that owns it would
            sed -e 's/{{\.Name}}/mirror-test/' -e 's/{{\.MirrorHost}}/c/' \
                -e 's/{{\.Percent}}/50/' -e '/{{-/d' "$f" >"$tmp/traffic-mirroring.yaml"
            validate "$tmp/traffic-mirroring.yaml" "$rel (template substituted)"
            ;;
        *) validate "$f" "$rel" ;;
        esac
    done < <(find "$SAMPLES/$dir" -type f \( -name '*.yaml' -o -name '*.yml' \
                  -o -name '*.yaml.golden' \) -print0 | sort -z)
    echo "# $dir: $files files; $((total_valid - before_valid)) of" \
         "$((total_docs - before_docs)) documents of supported kinds valid;" \
         "$((failed - before_failed)) files failed"
done

echo "1..$n"
echo "# total: $total_valid of $total_docs documents of supported kinds valid"
[ "$failed" -eq 0 ] || exit 1
exit 0
