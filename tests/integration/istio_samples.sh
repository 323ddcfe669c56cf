#!/usr/bin/env bash
# Conformance: every Istio sample of a kind meshd reads must validate and apply.
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
# substituted first. Then every istio/ file with resources is applied with
# `meshd ctl apply` to a real control plane (one revision each).
# Exit 77 (skip) when the corpus is absent.
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
to_apply=()   # istio/ files with resources: applied to a control plane below
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
        [ "${valid:-0}" -gt 0 ] && [ "$label" != "${label#istio/}" ] && to_apply+=("$file")
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

# ---- and they apply: a real control plane stores every file of istio/ ----
if "$MESH_BIN" ctl apply --help >/dev/null 2>&1; then
    "$MESH_BIN" --role=control --data-dir "$tmp/data" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
        --ready-fd 3 3>"$tmp/ready" >"$tmp/control.log" 2>&1 &
    cp=$!
    for _ in $(seq 1 100); do grep -q '^ready ' "$tmp/ready" 2>/dev/null && break; sleep 0.1; done
    api=$(sed -n 's/.* api=\([0-9]*\).*/\1/p' "$tmp/ready")
    n=$((n + 1))
    if [ -z "$api" ]; then
        failed=$((failed + 1))
        echo "not ok $n - the control plane starts"
        sed 's/^/#   /' "$tmp/control.log" | tail -n 20
    else
        echo "ok $n - the control plane starts (api port $api)"
        applied=0
        for f in "${to_apply[@]}"; do
            out=$("$MESH_BIN" ctl apply -f "$f" --server "http://127.0.0.1:$api" \
                  --token-file "$tmp/data/token" 2>&1)
            if [ $? -eq 0 ]; then
                applied=$((applied + 1))
            else
                n=$((n + 1))
                failed=$((failed + 1))
                echo "not ok $n - ctl apply -f ${f#"$SAMPLES"/}"
                printf '%s\n' "$out" | grep -v 'warning: \|note: ' | sed 's/^/#   /' | head -n 20
            fi
        done
        n=$((n + 1))
        rev=$(curl -s --max-time 5 "http://127.0.0.1:$api/v1/revision" | sed -n 's/.*"revision": *\([0-9]*\).*/\1/p')
        if [ "$applied" -eq "${#to_apply[@]}" ] && [ "${rev:-0}" -ge 1 ]; then
            echo "ok $n - ctl apply: all $applied files of istio/ with resources stored (revision $rev)"
        else
            failed=$((failed + 1))
            echo "not ok $n - ctl apply: $applied of ${#to_apply[@]} files stored (revision ${rev:-none})"
        fi
        kill -TERM "$cp" 2>/dev/null
        wait "$cp"
        cprc=$?
        n=$((n + 1))
        if [ "$cprc" -eq 0 ] && ! grep -q Sanitizer "$tmp/control.log"; then
            echo "ok $n - the control plane exits cleanly"
        else
            failed=$((failed + 1))
            echo "not ok $n - the control plane exits cleanly"
            tail -n 30 "$tmp/control.log" | sed 's/^/#   /'
        fi
    fi
else
    echo "# ctl apply not built: the apply stage is skipped"
fi

echo "1..$n"
echo "# total: $total_valid of $total_docs documents of supported kinds valid"
[ "$failed" -eq 0 ] || exit 1
exit 0
