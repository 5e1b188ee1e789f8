"""`opsbot import`: dumps and archives become the services' `backup:` (with retention from `find -mtime +N -delete`
and a schedule from a crontab line), and restores become restore steps with a backup parameter."""

from __future__ import annotations

import pytest

from tests.imports import imported, kinds, runbook, script, steps


def test_a_compressed_pg_dump_into_a_dated_file_is_a_postgres_backup_with_the_scripts_retention() -> None:
    _, data, catalog = script("""
        BACKUP_ROOT=/var/backups/pg
        KEEP=14
        STAMP=$(date +%F)
        mkdir -p "$BACKUP_ROOT"
        docker exec pg pg_dump -U app -Fc appdb | gzip -9 > "$BACKUP_ROOT/appdb-$STAMP.dump.gz"
        gzip -t "$BACKUP_ROOT/appdb-$STAMP.dump.gz" || echo "backup corrupt"
        find "$BACKUP_ROOT" -type f -name '*.gz' -mtime +$KEEP -delete
    """)
    assert data["services"]["pg"]["backup"] == {"type": "postgres", "directory": "/var/backups/pg",
                                                 "dsn_env": "PG_URL", "retention_days": 14}
    assert catalog.services["pg"].backup is not None
    # mkdir and the verification are what opsbot's backup does itself; the deletion is the retention step.
    assert kinds(data) == [("backup", "pg"), ("retention", "pg")]


def test_mysqldump_on_the_host_is_the_backup_of_the_database_the_runbook_runs_mysql_in() -> None:
    draft, data, _ = script("""
        docker-compose exec -T mysql-primary mysql -e "SELECT 1"
        mysqldump --single-transaction -h "$DB_HOST" -u backup -p"$DB_PASSWORD" shop | gzip > /srv/dumps/shop_$(date +%s).sql.gz
    """)
    assert data["services"]["mysql-primary"]["backup"] == {"type": "mysql", "directory": "/srv/dumps",
                                                           "dsn_env": "MYSQL_PRIMARY_URL"}
    assert "$DB_PASSWORD" not in str(data["services"])
    assert any("reads $DB_PASSWORD" in note for item in draft.mapped for note in item.found.decisions)


def test_redis_rdb_and_bgsave_are_redis_backups() -> None:
    _, data, _ = script("redis-cli -h sessions --rdb /backups/redis/dump-$(date +%F).rdb")
    assert data["services"]["sessions"]["backup"] == {"type": "redis", "directory": "/backups/redis",
                                                      "url_env": "SESSIONS_URL"}
    _, data, _ = script("docker exec cache redis-cli BGSAVE")
    backup = data["services"]["cache"]["backup"]
    assert backup["type"] == "redis" and backup["directory"] == "/backups/cache"  # a suggestion, marked low


def test_tar_of_paths_is_a_directory_backup_named_like_its_archives() -> None:
    _, data, catalog = script("""
        DEST=/mnt/backup
        tar -C / -czf $DEST/uploads-$(date +%Y%m%d).tar.gz /srv/app/uploads /srv/app/avatars
        tar czf "${DEST}/etc_$(date +%F).tgz" /etc/nginx
        find $DEST -mtime +7 -name "*.tar.gz" -exec rm {} \\;
    """)
    assert data["services"]["uploads"]["backup"] == {
        "type": "directory", "directory": "/mnt/backup", "paths": ["/srv/app/uploads", "/srv/app/avatars"],
        "retention_days": 7}
    assert data["services"]["etc"]["backup"]["paths"] == ["/etc/nginx"]
    assert catalog.services["uploads"].backup is not None


def test_restores_become_restore_steps_of_a_backup_the_person_chooses() -> None:
    _, data, _ = imported(runbook(
        ("Backup", "pg_dump -h db app > /backups/app.sql"),
        ("Restore", """
            DUMP="$1"
            [ -z "$DUMP" ] && exit 1
            if [ -z "$DUMP" ]; then echo "usage: $0 dump"; exit 1; fi
            docker compose stop api
            zcat "$DUMP" | psql -h db app
            docker compose start api
        """),
        ("Restore from a custom dump", "pg_restore -h db -d app --clean latest.dump")))
    assert kinds(data, "restore")[-3:] == [("stop", "api"), ("restore", "db"), ("start", "api")]
    assert steps(data, "restore")[-2]["backup"] == "{{ params.dump }}"
    assert data["runbooks"]["restore"]["parameters"]["dump"]["type"] == "backup"
    assert steps(data, "restore-from-a-custom-dump") == [{"kind": "restore", "service": "db",
                                                          "backup": "{{ params.backup }}"}]


@pytest.mark.parametrize("code", [
    "docker compose exec -T db psql -U app app < migrations/0042_add_index.sql",
    "cat scripts/cleanup.sql | psql -h db app",
    "mysql -h db app < /opt/app/fix_orders.sql",
])
def test_sql_fed_from_a_file_that_is_no_backup_is_never_a_restore_of_the_database(code: str) -> None:
    draft, data, _ = imported(runbook(("Backup", "pg_dump -h db app | gzip > /backups/db/app.sql.gz"),
                                      ("Apply", code)))
    assert steps(data, "apply") == [{"kind": "manual", "instructions": code}]
    assert "is no backup" in (draft.mapped[-1].manual or "")


def test_a_restore_of_a_service_with_no_backup_stays_manual() -> None:
    _, data, _ = script("psql -h reporting reports < nightly.sql")
    assert steps(data) == [{"kind": "manual", "instructions": "psql -h reporting reports < nightly.sql"}]


def test_a_crontab_line_schedules_the_backup_of_the_script_it_runs() -> None:
    _, data, catalog = imported(runbook(
        ("Nightly backup", """
            cat > /usr/local/bin/db-backup.sh <<'EOF'
            #!/bin/sh
            pg_dump -h db shop | gzip > /backups/shop-$(date +%F).sql.gz
            find /backups -mtime +10 -delete
            EOF
            chmod +x /usr/local/bin/db-backup.sh
            (crontab -l 2>/dev/null; true)
            echo "30 1 * * * /usr/local/bin/db-backup.sh >> /var/log/db-backup.log 2>&1" | crontab -
        """),
        ("Run it now", "sudo -u postgres bash /usr/local/bin/db-backup.sh\nbash /usr/local/bin/db-backup.sh")))
    assert data["services"]["db"]["backup"]["schedule"] == "30 1 * * *"
    assert data["services"]["db"]["backup"]["retention_days"] == 10
    assert catalog.services["db"].backup is not None and catalog.services["db"].backup.schedule is not None
    # Running the script the runbook holds is taking its backups.
    assert kinds(data, "run-it-now")[-1] == ("backup", "db")


def test_a_crontab_line_in_a_comment_beside_crontab_e_is_read_too() -> None:
    _, data, _ = imported(runbook(
        ("Backup", "# /opt/ops/backup.sh\nmysqldump -h mysql app > /data/dumps/app.sql"),
        ("Schedule it", "crontab -e\n# add: 15 3 * * 1-5 /opt/ops/backup.sh")))
    assert data["services"]["mysql"]["backup"]["schedule"] == "15 3 * * 1-5"


def test_a_crontab_line_of_a_script_that_is_not_a_backup_schedules_its_runbook_commented() -> None:
    _, data, _ = imported(runbook(("Watch the API", """
        cat > /opt/check_api.sh << EOF
        #!/bin/bash
        curl -f http://api:8000/health
        EOF
        echo "*/5 * * * * /opt/check_api.sh" | crontab -
    """)))
    draft_text = data  # the schedule is a comment: a scheduled run needs the ops channel first
    assert "schedule" not in draft_text["runbooks"]["watch-the-api"]
    assert steps(data, "watch-the-api") == [{"kind": "check", "service": "api", "checks": ["http /health"]}]
