#!/bin/sh
# Add FilmRestore to your desktop's application menu (for you only; no root needed). Run it again after moving
# this folder. To remove it: delete the desktop file and the two icons it names.
set -e
here=$(cd "$(dirname "$0")" && pwd)
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor"
mkdir -p "$apps" "$icons/256x256/apps" "$icons/scalable/apps"
cp "$here/filmrestore.png" "$icons/256x256/apps/filmrestore.png"
cp "$here/filmrestore.svg" "$icons/scalable/apps/filmrestore.svg"
sed "s|^Exec=FilmRestore|Exec=\"$here/FilmRestore\"|" "$here/filmrestore.desktop" > "$apps/filmrestore.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$apps" || true
echo "installed $apps/filmrestore.desktop and the icon under $icons"
