# Sourced by demo.sh and test.sh: installs what they use on a fresh Debian machine, once, into
# caches outside the repository (never into ../shared).
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}
PATH=$PATH:/usr/sbin:/sbin

# apt_need COMMAND=PACKAGE...: installs the packages whose command is missing (root, or sudo).
apt_need() {
    local need=() spec sudo=
    for spec in "$@"; do
        command -v "${spec%%=*}" >/dev/null || need+=("${spec#*=}")
    done
    # python3 without ensurepip (Debian's python3-venv) cannot make a venv.
    if [[ " $* " == *" python3="* ]] && ! python3 -c 'import ensurepip' 2>/dev/null; then need+=(python3-venv); fi
    ((${#need[@]})) || return 0
    ((EUID == 0)) || sudo=sudo
    echo "installing: ${need[*]}"
    $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# venv_tool NAME PACKAGE COMMAND: prints the path of COMMAND from PACKAGE (PyPI), installed
# into $CACHE/NAME-venv the first time.
venv_tool() {
    local env=$CACHE/$1-venv
    if [[ ! -x $env/bin/$3 ]]; then
        apt_need python3=python3
        echo "installing $2 into $env" >&2
        python3 -m venv "$env" && "$env/bin/pip" install -q --disable-pip-version-check "$2" >&2
    fi
    echo "$env/bin/$3"
}
