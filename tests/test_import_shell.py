"""`opsbot import` reads bash with tree-sitter: plain commands as argv, and the few compound forms a runbook's logic
is written in — `X=$(cmd)`, an `if` on one comparison or one command, a counted retry loop, a script written with a
here-document — with the file's line numbers."""

from __future__ import annotations

from bot.importing.argv import inside, option
from bot.importing.shell import looks_like_shell, statements
from bot.importing.sql import split
from bot.importing.variables import Variables


def test_a_captured_pipeline_keeps_its_commands_and_the_variable() -> None:
    [statement] = statements('USED="$(df -P / | awk \'NR==2 {print $5}\')"', 40)
    assert statement.captures == "USED" and statement.first_line == 40
    assert [command.program for command in statement.commands] == ["df", "awk"]


def test_comparisons_in_the_forms_scripts_write_them() -> None:
    code = """if [ "$X" -gt 80 ]; then echo hi; fi
if [[ ${X} -le 5 ]]; then :; else echo low; fi
if [ 10 -lt "$X" ]; then :; fi
if (( $(echo "$RATE > 0.5" | bc -l) )); then :; fi
if [ "$H" == "\\"healthy\\"" ]; then :; fi
if [ -z "$1" ]; then exit 1; fi
if [ $? -ne 0 ]; then exit 1; fi
if [ "$A" -gt 1 ] && [ "$B" -gt 2 ]; then :; fi
"""
    found = [(s.test.variable, s.test.operator, s.test.value) if s.test else "complex" for s in statements(code, 1)]
    assert found == [("X", ">", "80"), ("X", "<=", "5"), ("X", ">", "10"), ("RATE", ">", "0.5"),
                     ("H", "==", "healthy"), ("1", "-z", ""), ("?", "!=", "0"), "complex"]
    assert statements(code, 1)[1].test.else_text == "echo low"  # type: ignore[union-attr]


def test_an_if_on_a_command_is_that_command_and_its_branches() -> None:
    [statement] = statements("if curl -sf http://api/health; then echo up; else echo down; exit 2; fi", 7)
    assert statement.condition is not None and statement.condition.commands[0].program == "curl"
    assert statement.test is not None and [s.commands[0].program for s in statement.test.else_body] == ["echo", "exit"]


def test_a_counted_loop_and_any_other_loop() -> None:
    counted, other = statements("for i in {1..12}; do curl -f http://x/; sleep 5; done\n"
                                "for f in /backups/*; do gzip -t $f; done", 1)
    assert counted.repeat == 12 and [s.commands[0].program for s in counted.loop] == ["curl", "sleep"]
    assert other.complex


def test_a_script_written_by_a_here_document_keeps_its_path_body_and_lines() -> None:
    [statement] = statements("cat > /opt/ops/check.sh << 'EOF'\n#!/bin/bash\ndf -h\nEOF\n", 20)
    assert statement.writes == "/opt/ops/check.sh"
    assert statement.body == "#!/bin/bash\ndf -h\n" and statement.body_line == 21


def test_touching_parts_are_one_word_and_quoted_escapes_are_read() -> None:
    [statement] = statements('tar -czf $DIR/images_$DATE.tar.gz "a \\"b\\"" x', 1)
    assert statement.commands[0].words == ("tar", "-czf", "$DIR/images_$DATE.tar.gz", 'a "b"', "x")


def test_variables_fill_what_they_hold_as_far_as_it_is_written() -> None:
    variables = Variables()
    for statement in statements('ROOT=/srv\nDIR="$ROOT/backups/$(date +%F)"\nNAME="$1"', 1):
        for name, word in statement.assignments_only:
            variables.assign(name, word)
    assert variables.text("$DIR/db.sql") == "/srv/backups/$(date +%F)/db.sql"
    assert variables.arguments == {"NAME": (1, None)}


def test_options_bundled_and_container_wrappers() -> None:
    assert option(["psql", "-tAc", "SELECT 1"], "-c") == "SELECT 1"
    assert option(["mysql", "-uroot", "-e", "x"], "-u") == "root"
    [statement] = statements("kubectl exec -it pod-0 -n db -c main -- psql -U app", 1)
    wrapped = inside(statement.commands[0])
    assert wrapped is not None and wrapped.command.words == ("psql", "-U", "app")
    assert (wrapped.name, wrapped.namespace, wrapped.container, wrapped.interactive) == ("pod-0", "db", "main", True)
    [compose] = statements("docker compose -f x.yml exec -T web ./manage.py check", 1)
    wrapped = inside(compose.commands[0])
    assert wrapped is not None and not wrapped.interactive and wrapped.command.program == "manage.py"


def test_a_block_with_no_language_is_shell_only_when_it_reads_as_commands() -> None:
    assert looks_like_shell("systemctl restart nginx\njournalctl -u nginx --since today\n")
    assert not looks_like_shell("URL: http://your-server:9090\n- Graphs for any metric\n")
    assert not looks_like_shell("Response Time (P95): < 100ms\n")


def test_sql_splits_at_semicolons_outside_quotes_and_comments() -> None:
    found = split("-- clean up\nDELETE FROM t WHERE s = 'a;b';\n/* note; */ SELECT 1;\nVACUUM", 10)
    assert [(s.first_line, s.text) for s in found] == [(11, "DELETE FROM t WHERE s = 'a;b'"), (12, "SELECT 1"),
                                                       (13, "VACUUM")]
