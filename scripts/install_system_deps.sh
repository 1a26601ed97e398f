#!/usr/bin/env bash
# Install ffmpeg and the FluidR3_GM and TimGM6mb soundfonts where missing: with apt-get when
# root, otherwise print exactly what to install. A missing soundfont is not
# fatal (pretty_midi's bundled TimGM6mb.sf2 is the fallback); a missing ffmpeg is.
set -euo pipefail
need=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || [ -n "${MSS_SOUNDFONT:-}" ] || need+=(fluid-soundfont-gm)
# the realistic render's second soundfont (pretty_midi bundles the same file, so it is not fatal either)
[ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] || [ -n "${MSS_SOUNDFONT:-}" ] || need+=(timgm6mb-soundfont)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  exit 0
fi
echo "Missing system packages: ${need[*]}"
echo "  Debian/Ubuntu: sudo apt-get install ${need[*]}"
echo "  conda:         conda install -c conda-forge ffmpeg   (soundfont: set MSS_SOUNDFONT=/path/to/GM.sf2)"
if printf '%s\n' "${need[@]}" | grep -qx ffmpeg; then exit 1; fi
echo "continuing without them: the render step falls back to pretty_midi's TimGM6mb.sf2 (and says so)"
