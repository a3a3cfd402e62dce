#!/usr/bin/env bash
# Backups of a Palaver cluster: PostgreSQL (base backups plus archived WAL, for
# point-in-time recovery; or a logical dump of one deployment's schema) and the S3 media
# bucket. docs/DEPLOYMENT.md, "Backups", says when to use which; crates/server/tests/
# backup.rs runs every subcommand against a real PostgreSQL and a real S3 store.
#
#   backup-cluster.sh pg-base URL DIR        physical base backup of the whole PostgreSQL
#                                            cluster into DIR (new), WAL included, checked
#                                            against its manifest
#   backup-cluster.sh wal-archive PATH NAME  archive_command: copy one WAL segment into
#                                            $PALAVER_WAL_ARCHIVE, durably, never over another
#   backup-cluster.sh pg-recover BASE DIR [TIME]
#                                            prepare DIR (new) from base backup BASE to
#                                            replay the archived WAL up to TIME (default:
#                                            all of it); then start PostgreSQL on DIR
#   backup-cluster.sh pg-dump URL FILE       logical dump of one deployment's schema
#                                            ($PALAVER_NAMESPACE, default palaver)
#   backup-cluster.sh pg-restore FILE URL    restore such a dump into the database at URL
#   backup-cluster.sh media-sync DEST        copy the media bucket to DEST (a directory or
#                                            s3://bucket/prefix): new and changed objects only
#   backup-cluster.sh media-restore SRC      copy SRC back into the media bucket
#
# URL is a PostgreSQL connection URL, the server's `store` (a password is better kept in
# ~/.pgpass or PGPASSWORD than in the URL); pg-base needs a role with REPLICATION. The bucket: PALAVER_MEDIA__S3_BUCKET,
# PALAVER_MEDIA__S3_ENDPOINT (for a store other than AWS), and the AWS_* credentials, as
# the server reads them; the aws CLI does the copying.
set -euo pipefail

die() { echo "backup-cluster: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 not found (${2:-install it})"; }

# Debian keeps pg_verifybackup and friends in the versioned directory only.
pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
[ -n "$pgbin" ] && PATH="$PATH:$pgbin"

namespace="${PALAVER_NAMESPACE:-palaver}"
[[ "$namespace" =~ ^[a-z_][a-z0-9_]*$ ]] || die "PALAVER_NAMESPACE must be a plain schema name"

aws_s3() {
  need aws "pip install awscli, or your distribution's awscli"
  local endpoint=()
  [ -n "${PALAVER_MEDIA__S3_ENDPOINT:-}" ] && endpoint=(--endpoint-url "$PALAVER_MEDIA__S3_ENDPOINT")
  aws "${endpoint[@]}" s3 "$@"
}

bucket() {
  [ -n "${PALAVER_MEDIA__S3_BUCKET:-}" ] || die "PALAVER_MEDIA__S3_BUCKET is not set"
  echo "s3://$PALAVER_MEDIA__S3_BUCKET"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  pg-base)
    [ $# -eq 2 ] || die "usage: pg-base URL DIR"
    need pg_basebackup
    need pg_verifybackup
    url="$1" dest="$2"
    [ ! -e "$dest" ] || die "$dest exists; give a new directory"
    # Plain format (so pg_verifybackup can check it), WAL streamed alongside so the copy
    # is consistent on its own, a fast checkpoint so it starts at once, and a manifest
    # with SHA-256 of every file.
    pg_basebackup --dbname="$url" --pgdata="$dest" --format=plain --wal-method=stream \
      --checkpoint=fast --manifest-checksums=SHA256 --label="palaver $(date -u +%FT%TZ)"
    pg_verifybackup "$dest"
    echo "base backup in $dest, verified"
    ;;
  wal-archive)
    [ $# -eq 2 ] || die "usage: wal-archive PATH NAME (archive_command = '... wal-archive %p %f')"
    [ -n "${PALAVER_WAL_ARCHIVE:-}" ] || die "PALAVER_WAL_ARCHIVE is not set"
    src="$1" name="$2" dir="$PALAVER_WAL_ARCHIVE"
    mkdir -p "$dir"
    if [ -e "$dir/$name" ]; then
      # PostgreSQL may retry a segment it archived before it crashed: the same bytes are
      # success, different ones must never replace what is there.
      cmp -s "$src" "$dir/$name" && exit 0
      die "$dir/$name exists with other content"
    fi
    cp "$src" "$dir/$name.partial"
    sync "$dir/$name.partial"
    mv "$dir/$name.partial" "$dir/$name"
    sync "$dir"
    ;;
  pg-recover)
    [ $# -ge 2 ] && [ $# -le 3 ] || die "usage: pg-recover BASE DIR [TIME]"
    [ -n "${PALAVER_WAL_ARCHIVE:-}" ] || die "PALAVER_WAL_ARCHIVE is not set"
    base="$1" dest="$2" target="${3:-}"
    [ -f "$base/backup_manifest" ] || die "$base is not a base backup"
    [ ! -e "$dest" ] || die "$dest exists; give a new directory"
    pg_verifybackup "$base"
    cp -a "$base" "$dest"
    chmod 700 "$dest"
    {
      echo "# Added by backup-cluster.sh pg-recover: replay archived WAL, then serve."
      echo "restore_command = 'cp $PALAVER_WAL_ARCHIVE/%f %p'"
      [ -n "$target" ] && echo "recovery_target_time = '$target'"
      echo "recovery_target_action = 'promote'"
      # The recovered server must not archive into the archive it recovers from.
      echo "archive_mode = off"
    } >>"$dest/postgresql.auto.conf"
    touch "$dest/recovery.signal"
    echo "start PostgreSQL on $dest: it replays WAL${target:+ up to $target} and then accepts writes"
    ;;
  pg-dump)
    [ $# -eq 2 ] || die "usage: pg-dump URL FILE"
    need pg_dump
    url="$1" file="$2"
    # One deployment is one schema (`namespace`): its tables, sequences and migrations'
    # record, in the custom format pg_restore reads (compressed, restorable in parallel).
    pg_dump --format=custom --schema="$namespace" --no-owner --file="$file.partial" "$url"
    mv "$file.partial" "$file"
    pg_restore --list "$file" >/dev/null
    echo "schema $namespace dumped to $file"
    ;;
  pg-restore)
    [ $# -eq 2 ] || die "usage: pg-restore FILE URL"
    need pg_restore
    # Into a database that does not have the schema yet: a restore never merges into
    # live data. --exit-on-error: a partial restore is a failed one.
    pg_restore --exit-on-error --no-owner --dbname="$2" "$1"
    echo "restored $1 into $2"
    ;;
  media-sync)
    [ $# -eq 1 ] || die "usage: media-sync DEST"
    # Objects are content-addressed and never change: a copy never needs to replace one,
    # and --size-only skips comparing times. Nothing is deleted at the destination, so an
    # object the orphan sweep removed stays in the backup.
    aws_s3 sync --only-show-errors --size-only "$(bucket)" "$1"
    echo "media bucket copied to $1"
    ;;
  media-restore)
    [ $# -eq 1 ] || die "usage: media-restore SRC"
    aws_s3 sync --only-show-errors --size-only "$1" "$(bucket)"
    echo "media restored from $1 into $(bucket)"
    ;;
  *)
    sed -n '2,25p' "$0" >&2
    exit 2
    ;;
esac
