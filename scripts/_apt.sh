# Sourced by scripts/*_install.sh: one way to install Debian packages, only those missing.
#
#   apt_install_missing LABEL PROBE=PACKAGE...
#
# PROBE is a command (found on PATH, in /usr/sbin or /sbin), an absolute path that must exist,
# or `pkg:NAME` (the package NAME is installed). Packages are installed non-interactively
# without recommends, waiting up to 10 minutes for another apt process's lock; `apt-get update`
# runs only when an install fails without it. Sets APT_INSTALLED to what it installed.

apt_install_missing() {
  local label=$1
  shift
  local sudo=
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
  local missing=() pair probe pkg
  for pair in "$@"; do
    probe=${pair%%=*}
    pkg=${pair#*=}
    case "$probe" in
      /*) [ -e "$probe" ] && continue ;;
      pkg:*)
        dpkg-query -W -f='${Status}' "${probe#pkg:}" 2>/dev/null | grep -q "install ok installed" &&
          continue
        ;;
      *)
        if command -v "$probe" >/dev/null 2>&1 || [ -x "/usr/sbin/$probe" ] || [ -x "/sbin/$probe" ]; then
          continue
        fi
        ;;
    esac
    case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  done
  APT_INSTALLED=()
  if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
  local opts=(-o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)
  echo "${label}: installing ${missing[*]}" >&2
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install "${opts[@]}" "${missing[@]}" >/dev/null; then
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install "${opts[@]}" "${missing[@]}" >/dev/null
  fi
  APT_INSTALLED=("${missing[@]}")
}
