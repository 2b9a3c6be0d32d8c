#!/usr/bin/env bash
# GNN message passing (a data split that leaves edge_index whole, a masked
# lookup of a table with symbolic rows), integer collectives (none summed;
# --collectives ort sends only the types ONNX Runtime takes; stitch sums
# integers with Add) and --dim NAME=0 (an empty past), verified in ONNX
# Runtime: tests/e2e/gnn.py, on models from tests/e2e/make_gnn.py.
#   tests/e2e/gnn.sh BIN SRCDIR
set -u
exec /usr/bin/python3 "$2/tests/e2e/gnn.py" "$1" "$2"
