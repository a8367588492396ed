# Shared by scripts/*.sh: install what a fresh machine lacks, start local services.

step() { printf '\n==> %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    step "installing $*"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_nextest() {
    if ! cargo nextest --version >/dev/null 2>&1; then
        step "installing cargo-nextest"
        cargo install cargo-nextest --locked
    fi
}

# PostgreSQL (127.0.0.1:5432, trust auth, database `test`) is what the tests use, and
# the mosquitto binary (each test runs its own broker on a free port); the machine's
# Mosquitto on 1883 is started too where it is down.
ensure_services() {
    command -v mosquitto >/dev/null || command -v /usr/sbin/mosquitto >/dev/null || apt_install mosquitto
    # xmllint checks the Tunduk stand-in's bodies against the WSDL's schema.
    command -v xmllint >/dev/null || apt_install libxml2-utils
    # qpdf and pdftotext check the resolution PDFs.
    command -v qpdf >/dev/null || apt_install qpdf
    command -v pdftotext >/dev/null || apt_install poppler-utils
    local installed_postgres=
    if ! command -v pg_ctl >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
        apt_install postgresql
        installed_postgres=1
    fi
    if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        step "starting PostgreSQL"
        as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
        pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; return 1; }
    fi
    if ! psql -h 127.0.0.1 -U postgres -d postgres -c 'select 1' >/dev/null 2>&1; then
        # Debian's package asks a password of TCP clients; the tests connect as
        # postgres without one. Only a PostgreSQL installed here, for the tests, is
        # opened to 127.0.0.1; someone else's is left as it is.
        if [ -z "$installed_postgres" ]; then
            echo "PostgreSQL on 127.0.0.1:5432 refuses user postgres without a password: the tests need trust auth for 127.0.0.1" >&2
            return 1
        fi
        step "letting 127.0.0.1 into the PostgreSQL installed for the tests without a password"
        as_root sed -i '1i host all all 127.0.0.1/32 trust' \
            "$(ls /etc/postgresql/*/main/pg_hba.conf | head -1)"
        as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main reload
        sleep 1
    fi
    psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1 \
        || psql -h 127.0.0.1 -U postgres -c 'create database test' >/dev/null
    if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
        step "starting Mosquitto"
        as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf
        for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.2; done
    fi
}

# ONNX Runtime for the recognizer (ort's `load-dynamic`): the shared library from the
# PyPI `onnxruntime` wheel, unpacked once under .cache/onnxruntime/lib/. Exports
# ORT_DYLIB_PATH unless the caller already points it at a library.
ONNXRUNTIME_VERSION=1.32.0
ensure_onnxruntime() {
    if [ -n "${ORT_DYLIB_PATH:-}" ] && [ -f "$ORT_DYLIB_PATH" ]; then
        return 0
    fi
    local root lib
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.cache/onnxruntime"
    lib="$root/lib/libonnxruntime.so.$ONNXRUNTIME_VERSION"
    if [ ! -f "$lib" ]; then
        step "fetching ONNX Runtime $ONNXRUNTIME_VERSION (PyPI wheel onnxruntime)"
        local pip=pip3
        command -v pip3 >/dev/null || pip="python3 -m pip"
        # The wheel is tagged per Python version; any tag carries the same library.
        $pip download --quiet --no-deps "onnxruntime==$ONNXRUNTIME_VERSION" -d "$root/wheel" \
            || $pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
                --platform manylinux_2_28_x86_64 "onnxruntime==$ONNXRUNTIME_VERSION" -d "$root/wheel"
        local wheel
        wheel="$(ls "$root"/wheel/onnxruntime-"$ONNXRUNTIME_VERSION"-*.whl | head -1)"
        mkdir -p "$root/lib"
        python3 - "$wheel" "$root/lib" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime"):
            with z.open(name) as src, open(os.path.join(dest, base), "wb") as out:
                out.write(src.read())
PY
    fi
    export ORT_DYLIB_PATH="$lib"
}

# The stock SOAP client the smartcity-service tests call the endpoint with: Python's
# zeep from PyPI, in its own virtual environment under .cache/stock-soap/. Exports
# KOZOMOL_STOCK_SOAP_PYTHON unless the caller already names a Python.
ZEEP_VERSION=4.3.3
# The browser tests (server/tests/browser.rs) drive Debian's Chromium with npm's
# playwright-core (the library alone: it never downloads a browser of its own).
PLAYWRIGHT_VERSION=1.65.2
# The accessibility checker the browser tests run on every page (WCAG 2 A and AA rules).
AXE_VERSION=4.11.1

ensure_browser() {
    if [ -z "${KOZOMOL_CHROMIUM:-}" ]; then
        command -v chromium >/dev/null || apt_install chromium
        export KOZOMOL_CHROMIUM="$(command -v chromium)"
    fi
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.cache/playwright"
    if ! grep -qs "\"version\": \"$PLAYWRIGHT_VERSION\"" "$root/node_modules/playwright-core/package.json" \
        || ! grep -qs "\"version\": \"$AXE_VERSION\"" "$root/node_modules/axe-core/package.json"; then
        command -v npm >/dev/null || apt_install nodejs npm
        step "installing playwright-core $PLAYWRIGHT_VERSION and axe-core $AXE_VERSION (npm)"
        mkdir -p "$root"
        npm install --silent --no-audit --no-fund --prefix "$root" \
            "playwright-core@$PLAYWRIGHT_VERSION" "axe-core@$AXE_VERSION" >/dev/null
    fi
    export KOZOMOL_PLAYWRIGHT="$root/node_modules"
    # playwright-core runs on Node.js 20 or newer; Debian 12's is 18. Where the
    # machine's is older, the npm registry's `node` package brings a newer one.
    local major
    major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
    if [ "$major" -lt 20 ]; then
        local node_root
        node_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.cache/node"
        if [ ! -x "$node_root/node_modules/node/bin/node" ]; then
            step "fetching Node.js 20 (npm package node): this machine's is $major"
            npm install --silent --no-audit --no-fund --prefix "$node_root" node@20 >/dev/null
        fi
        export PATH="$node_root/node_modules/node/bin:$PATH"
    fi
}

# Python tools from PyPI, each in a venv of its own under .cache/: `python_venv NAME
# LABEL CHECK PACKAGE...` installs the packages into .cache/NAME unless CHECK (a shell
# command, run with $root set to that venv) already succeeds, and leaves the venv's
# path in $root.
python_venv() {
    local name="$1" label="$2" check="$3"
    shift 3
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.cache/$name"
    if ! (eval "$check") >/dev/null 2>&1; then
        step "installing $label"
        python3 -m venv --clear "$root" 2>/dev/null || {
            apt_install python3-venv
            python3 -m venv --clear "$root"
        }
        "$root/bin/python" -m pip install --quiet "$@"
    fi
}

# The API fuzzer (server/tests/web.rs).
SCHEMATHESIS_VERSION=4.32.5

ensure_schemathesis() {
    if [ -n "${KOZOMOL_SCHEMATHESIS:-}" ]; then
        return 0
    fi
    local root
    python_venv schemathesis "the API fuzzer (PyPI schemathesis $SCHEMATHESIS_VERSION)" \
        '"$root/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION"' \
        "schemathesis==$SCHEMATHESIS_VERSION"
    export KOZOMOL_SCHEMATHESIS="$root/bin/schemathesis"
}

# The S3 stand-in the evidence bucket's tests run against (moto's server: it checks
# request signatures once an account exists).
MOTO_VERSION=5.2.6

ensure_s3_standin() {
    if [ -n "${KOZOMOL_MOTO_SERVER:-}" ]; then
        return 0
    fi
    local root
    python_venv moto "the S3 stand-in (PyPI moto[server] $MOTO_VERSION)" \
        '"$root/bin/python" -c "import moto; assert moto.__version__ == \"$MOTO_VERSION\""' \
        "moto[server]==$MOTO_VERSION"
    export KOZOMOL_MOTO_SERVER="$root/bin/moto_server"
}

ensure_stock_soap_client() {
    if [ -n "${KOZOMOL_STOCK_SOAP_PYTHON:-}" ]; then
        return 0
    fi
    local root
    python_venv stock-soap "the stock SOAP client (PyPI zeep $ZEEP_VERSION)" \
        '"$root/bin/python" -c "import zeep; assert zeep.__version__ == \"$ZEEP_VERSION\""' \
        "zeep==$ZEEP_VERSION"
    export KOZOMOL_STOCK_SOAP_PYTHON="$root/bin/python"
}

# The deploy files' validators (scripts/validate-deploy.sh): kubernetes-validate carries
# the Kubernetes schemas and check-jsonschema the compose specification's, so nothing
# is downloaded when they run.
KUBERNETES_VALIDATE_VERSION=1.37.0
CHECK_JSONSCHEMA_VERSION=0.39.0

ensure_deploy_validators() {
    local root
    python_venv deploy-validators "the deploy validators (PyPI kubernetes-validate $KUBERNETES_VALIDATE_VERSION, check-jsonschema $CHECK_JSONSCHEMA_VERSION)" \
        '"$root/bin/kubernetes-validate" --version | grep -q "$KUBERNETES_VALIDATE_VERSION" && "$root/bin/check-jsonschema" --version | grep -q "$CHECK_JSONSCHEMA_VERSION"' \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
    export KOZOMOL_DEPLOY_VALIDATORS="$root/bin"
}
