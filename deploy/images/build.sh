#!/usr/bin/env bash
# Builds the local test images (nothing can be pulled here): local/busybox:1,
# local/busybox:2 (same tools, different /www/index.html) and local/nginx:1.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

busybox_root() { # dir version
  local d=$1
  mkdir -p "$d/bin" "$d/www" "$d/tmp" "$d/etc" "$d/data"
  cp /bin/busybox "$d/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$d/bin/$a"; done
  echo "root:x:0:0:root:/root:/bin/sh" > "$d/etc/passwd"
  echo "nobody:x:65534:65534:nobody:/:/bin/false" >> "$d/etc/passwd"
  echo "root:x:0:" > "$d/etc/group"; echo "nogroup:x:65534:" >> "$d/etc/group"
  echo "hello from busybox:$2" > "$d/www/index.html"
  mkdir -p "$d/www/cgi-bin"
  printf '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "remote=$REMOTE_ADDR"\necho "xff=$HTTP_X_FORWARDED_FOR"\necho "host=$(hostname)"\n' > "$d/www/cgi-bin/whoami"
  chmod +x "$d/www/cgi-bin/whoami"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

for v in 1 2; do
  if ! image_exists "local/busybox:$v" || [ "${FORCE:-}" = 1 ]; then
    busybox_root "$tmp/bb$v" "$v"
    tar -C "$tmp/bb$v" -c . | docker import -c 'CMD ["sh"]' - "local/busybox:$v" >/dev/null
    echo "built local/busybox:$v"
  fi
done

if [ -x /usr/sbin/nginx ] && { ! image_exists local/nginx:1 || [ "${FORCE:-}" = 1 ]; }; then
  d=$tmp/nginx
  busybox_root "$d" nginx
  mkdir -p "$d/usr/sbin" "$d/etc/nginx" "$d/var/lib/nginx/body" "$d/var/lib/nginx/proxy" "$d/var/lib/nginx/fastcgi" "$d/var/log/nginx" "$d/run"
  cp /usr/sbin/nginx "$d/usr/sbin/nginx"
  for lib in $(ldd /usr/sbin/nginx | grep -o '/[^ ]*'); do mkdir -p "$d$(dirname "$lib")"; cp -L "$lib" "$d$lib"; done
  cat > "$d/etc/nginx/nginx.conf" <<'CONF'
user nobody nogroup;
worker_processes 1;
daemon off;
error_log /dev/stderr warn;
pid /run/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 100000;
  server {
    listen 80 reuseport;
    root /www;
    location /ip { default_type text/plain; return 200 "remote=$remote_addr xff=$http_x_forwarded_for host=$hostname\n"; }
  }
}
CONF
  tar -C "$d" -c . | docker import -c 'CMD ["/usr/sbin/nginx","-c","/etc/nginx/nginx.conf"]' - local/nginx:1 >/dev/null
  echo "built local/nginx:1"
fi
