package sqlclass

import "strings"

// Functions with side effects, by dialect, with the class a call raises a
// statement to. A SELECT that calls one is not a plain read: it bumps a
// sequence, takes a lock, ends another session, changes a setting, reads or
// writes a server file, holds a connection slot, or runs SQL the parser
// never sees (dblink_exec, query_to_xml). Names are lower case; prefixes
// cover whole families (every lo_* large-object call, every advisory lock).
//
// Functions a user defines can write too; no parser can see into them. That
// is what the read-only wrapper of the REPL is for.

var pgFunctions = map[string]string{
	"nextval": Write, "setval": Write, "txid_current": Write, "pg_current_xact_id": Write,
	"pg_notify":            Write,
	"set_config":           Admin,
	"pg_terminate_backend": Admin, "pg_cancel_backend": Admin, "pg_reload_conf": Admin, "pg_rotate_logfile": Admin,
	"pg_sleep": Admin, "pg_sleep_for": Admin, "pg_sleep_until": Admin,
	"pg_read_file": Admin, "pg_read_binary_file": Admin, "pg_ls_dir": Admin, "pg_stat_file": Admin,
	"pg_file_write": Admin, "pg_file_rename": Admin, "pg_file_unlink": Admin, "pg_file_sync": Admin,
	"pg_ls_logdir": Admin, "pg_ls_waldir": Admin, "pg_ls_tmpdir": Admin, "pg_ls_archive_statusdir": Admin,
	"pg_switch_wal": Admin, "pg_create_restore_point": Admin, "pg_promote": Admin,
	"pg_backup_start": Admin, "pg_backup_stop": Admin, "pg_start_backup": Admin, "pg_stop_backup": Admin,
	"pg_logical_emit_message": Admin, "pg_log_backend_memory_contexts": Admin,
	"pg_import_system_collations": Admin, "pg_wal_replay_pause": Admin, "pg_wal_replay_resume": Admin,
	"pg_logical_slot_get_changes": Admin, "pg_logical_slot_get_binary_changes": Admin,
	"pg_replication_slot_advance": Admin, "pg_copy_logical_replication_slot": Admin, "pg_copy_physical_replication_slot": Admin,
	// These run the text of their argument as SQL.
	"query_to_xml": Admin, "query_to_xml_and_xmlschema": Admin, "query_to_xmlschema": Admin,
	"cursor_to_xml": Admin, "cursor_to_xmlschema": Admin,
	"lo_export": Admin, "lo_import": Admin,
}

var pgFunctionPrefixes = []struct{ prefix, class string }{
	{"pg_advisory_", Write}, {"pg_try_advisory_", Write},
	{"lo_", Write}, {"lowrite", Write}, {"loread", Write},
	{"dblink", Admin},
	{"pg_stat_reset", Admin}, {"pg_create_", Admin}, {"pg_drop_", Admin}, {"pg_replication_origin_", Admin},
}

var mysqlFunctions = map[string]string{
	"get_lock": Write, "release_lock": Write, "release_all_locks": Write,
	"nextval": Write, "setval": Write, // MariaDB sequences
	"sleep": Admin, "benchmark": Admin, "load_file": Admin,
	"sys_exec": Admin, "sys_eval": Admin,
	"master_pos_wait": Admin, "source_pos_wait": Admin, "master_gtid_wait": Admin,
	"wait_for_executed_gtid_set": Admin, "wait_until_sql_thread_after_gtids": Admin,
}

var sqliteFunctions = map[string]string{
	"load_extension": Admin, "writefile": Admin, "readfile": Admin, "edit": Admin,
	"fts3_tokenizer": Admin,
}

// functionClass returns the class a call of name raises a statement to, or
// "" when the function has no known side effect.
func functionClass(name string, exact map[string]string, prefixes []struct{ prefix, class string }) string {
	name = strings.ToLower(name)
	if c, ok := exact[name]; ok {
		return c
	}
	for _, p := range prefixes {
		if strings.HasPrefix(name, p.prefix) {
			return p.class
		}
	}
	return ""
}
