# A thin wrapper around CMake so that `make` and `make test` are the two commands to know.
# Every target first installs the Debian packages it needs (`make deps`), then configures the
# build directory once (Ninja) and builds with $(JOBS) jobs.
#
#   make          build build/shoal, build/libshoal.a, the examples and tests
#   make test     build, then run every test through ctest
#   make asan     build-asan/ with AddressSanitizer + UBSan, whole suite, SHOAL_TEST_QUICK=1
#   make tsan     build-tsan/ with ThreadSanitizer, the comm tests (ctest -L comm)
#   make bench    build, then bench/compare_mpi.sh (shoal vs Open MPI); BENCH_ARGS passes options
#   make run      build, then a distributed generation on 4 local workers (README.md)
#   make docs     regenerate docs/settings.md from `shoal settings --markdown`
#   make clean    remove the build directories

# A comma inside $(call ...) arguments must come from a variable.
, := ,

JOBS ?= 2
BUILD ?= build
CTEST_ARGS ?=
BENCH_ARGS ?=
CTEST = ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

DEB_PACKAGES = cmake ninja-build gcc libssl-dev openmpi-bin libopenmpi-dev iproute2 pkg-config

.PHONY: all build deps test asan tsan bench run docs clean

all: build

# Installs whichever packages are missing; silent when all are present. apt-get update runs
# only when the install fails (a fresh image's package lists may be empty or stale).
deps:
	@command -v dpkg >/dev/null 2>&1 || { echo "make deps: no dpkg (not Debian?); install $(DEB_PACKAGES) by hand" >&2; exit 0; }; \
	missing=""; \
	for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
	echo "make deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$sudo apt-get install -y --no-install-recommends $$missing || \
	  { $$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends $$missing; }

# configure DIR EXTRA-CMAKE-ARGS: generate DIR once; later runs let ninja re-run cmake itself.
define configure
	@if [ ! -f $(1)/build.ninja ]; then cmake -S . -B $(1) -G Ninja $(2); fi
endef

build: deps
	$(call configure,$(BUILD),)
	ninja -C $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && $(CTEST)

asan: deps
	$(call configure,build-asan,-DSHOAL_SANITIZE=address$(,)undefined)
	ninja -C build-asan -j$(JOBS)
	cd build-asan && SHOAL_TEST_QUICK=1 \
	  ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(CTEST)

# TSan needs the address-space layout it was built for; setarch -R turns off ASLR for the run
# when the kernel allows it (newer kernels' wider mmap randomization breaks TSan's shadow map).
tsan: deps
	$(call configure,build-tsan,-DSHOAL_SANITIZE=thread)
	ninja -C build-tsan -j$(JOBS)
	cd build-tsan && norand=""; \
	  if setarch $$(uname -m) -R true 2>/dev/null; then norand="setarch $$(uname -m) -R"; fi; \
	  SHOAL_TEST_QUICK=1 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  $$norand $(CTEST) -L comm

bench: build
	bench/compare_mpi.sh --build $(BUILD) $(BENCH_ARGS)

run: build
	@echo "+ $(BUILD)/shoal run --workers 4 -n 32"
	@$(BUILD)/shoal run --workers 4 -n 32

docs: build
	$(BUILD)/shoal settings --markdown > docs/settings.md

clean:
	rm -rf $(BUILD) build-asan build-tsan
