package sqlclass

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// classifyPostgres parses sql with libpg_query and classifies every
// statement in it; the string's class is the highest.
func classifyPostgres(sql string) string {
	if len(sql) > maxBytes {
		return Unknown
	}
	tree, err := pg.Parse(sql)
	if err != nil || len(tree.GetStmts()) == 0 {
		return Unknown
	}
	class := Read
	for _, raw := range tree.GetStmts() {
		class = Max(class, pgStatement(raw.GetStmt()))
	}
	return class
}

// pgStatement classifies one statement: the class of its kind, raised by
// whatever its tree holds (pgWalk).
func pgStatement(n *pg.Node) string {
	if n == nil || n.GetNode() == nil {
		return Unknown
	}
	if e := n.GetExplainStmt(); e != nil && !pgExplainRuns(e) {
		return Read // EXPLAIN alone only plans: nothing under it runs
	}
	class := pgTopClass(n)
	if class == Unknown {
		return Unknown
	}
	return Max(class, pgWalk(n))
}

// pgTopClass is the class of a statement by its kind alone.
func pgTopClass(n *pg.Node) string {
	switch s := n.GetNode().(type) {
	case *pg.Node_SelectStmt, *pg.Node_VariableShowStmt, *pg.Node_FetchStmt, *pg.Node_ClosePortalStmt,
		*pg.Node_DeallocateStmt:
		return Read
	case *pg.Node_ExplainStmt:
		// EXPLAIN ANALYZE runs the statement (pgStatement took plain
		// EXPLAIN already).
		return pgStatement(s.ExplainStmt.GetQuery())
	case *pg.Node_DeclareCursorStmt:
		return pgStatement(s.DeclareCursorStmt.GetQuery())
	case *pg.Node_PrepareStmt:
		// What is prepared runs later under EXECUTE, which cannot be
		// placed: the class is that of what is prepared.
		return pgStatement(s.PrepareStmt.GetQuery())
	case *pg.Node_TransactionStmt:
		switch s.TransactionStmt.GetKind() {
		case pg.TransactionStmtKind_TRANS_STMT_BEGIN, pg.TransactionStmtKind_TRANS_STMT_START,
			pg.TransactionStmtKind_TRANS_STMT_COMMIT, pg.TransactionStmtKind_TRANS_STMT_ROLLBACK,
			pg.TransactionStmtKind_TRANS_STMT_SAVEPOINT, pg.TransactionStmtKind_TRANS_STMT_RELEASE,
			pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
			// Transaction control changes no data by itself; what runs
			// inside is classified statement by statement.
			return Read
		}
		return Admin // two-phase commit: PREPARE TRANSACTION, COMMIT PREPARED
	case *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt,
		*pg.Node_RefreshMatViewStmt, *pg.Node_NotifyStmt:
		return Write
	case *pg.Node_CopyStmt:
		c := s.CopyStmt
		switch {
		case c.GetIsProgram() || c.GetFilename() != "":
			return Admin // a server file or a shell command
		case c.GetIsFrom():
			return Write
		}
		return Read // COPY ... TO STDOUT
	case *pg.Node_CreateStmt, *pg.Node_CreateTableAsStmt, *pg.Node_AlterTableStmt, *pg.Node_DropStmt,
		*pg.Node_TruncateStmt, *pg.Node_IndexStmt, *pg.Node_ViewStmt, *pg.Node_RenameStmt, *pg.Node_CommentStmt,
		*pg.Node_CreateSchemaStmt, *pg.Node_CreateSeqStmt, *pg.Node_AlterSeqStmt, *pg.Node_CreateFunctionStmt,
		*pg.Node_AlterFunctionStmt, *pg.Node_CreateTrigStmt, *pg.Node_RuleStmt, *pg.Node_CreateDomainStmt,
		*pg.Node_AlterDomainStmt, *pg.Node_CompositeTypeStmt, *pg.Node_CreateEnumStmt, *pg.Node_AlterEnumStmt,
		*pg.Node_CreateRangeStmt, *pg.Node_DefineStmt, *pg.Node_AlterTypeStmt, *pg.Node_ReindexStmt,
		*pg.Node_ClusterStmt, *pg.Node_VacuumStmt, *pg.Node_AlterObjectSchemaStmt, *pg.Node_AlterOwnerStmt,
		*pg.Node_AlterObjectDependsStmt, *pg.Node_CreateStatsStmt, *pg.Node_AlterStatsStmt,
		*pg.Node_CreatePolicyStmt, *pg.Node_AlterPolicyStmt, *pg.Node_CreateCastStmt,
		*pg.Node_CreateConversionStmt, *pg.Node_CreateOpClassStmt, *pg.Node_CreateOpFamilyStmt,
		*pg.Node_AlterOpFamilyStmt, *pg.Node_AlterOperatorStmt, *pg.Node_AlterCollationStmt,
		*pg.Node_AlterTsdictionaryStmt, *pg.Node_AlterTsconfigurationStmt, *pg.Node_CreateForeignTableStmt,
		*pg.Node_SecLabelStmt, *pg.Node_CreateTransformStmt, *pg.Node_ReplicaIdentityStmt:
		return DDL
	case *pg.Node_GrantStmt, *pg.Node_GrantRoleStmt, *pg.Node_AlterDefaultPrivilegesStmt, *pg.Node_CreateRoleStmt,
		*pg.Node_AlterRoleStmt, *pg.Node_AlterRoleSetStmt, *pg.Node_DropRoleStmt, *pg.Node_DropOwnedStmt,
		*pg.Node_ReassignOwnedStmt, *pg.Node_VariableSetStmt, *pg.Node_AlterSystemStmt, *pg.Node_DoStmt,
		*pg.Node_CallStmt, *pg.Node_LoadStmt, *pg.Node_CheckPointStmt, *pg.Node_DiscardStmt, *pg.Node_LockStmt,
		*pg.Node_ListenStmt, *pg.Node_UnlistenStmt, *pg.Node_ConstraintsSetStmt, *pg.Node_CreateExtensionStmt,
		*pg.Node_AlterExtensionStmt, *pg.Node_AlterExtensionContentsStmt, *pg.Node_CreatedbStmt,
		*pg.Node_DropdbStmt, *pg.Node_AlterDatabaseStmt, *pg.Node_AlterDatabaseSetStmt,
		*pg.Node_AlterDatabaseRefreshCollStmt, *pg.Node_CreateTableSpaceStmt, *pg.Node_DropTableSpaceStmt,
		*pg.Node_AlterTableSpaceOptionsStmt, *pg.Node_AlterTableMoveAllStmt, *pg.Node_CreateFdwStmt,
		*pg.Node_AlterFdwStmt, *pg.Node_CreateForeignServerStmt, *pg.Node_AlterForeignServerStmt,
		*pg.Node_CreateUserMappingStmt, *pg.Node_AlterUserMappingStmt, *pg.Node_DropUserMappingStmt,
		*pg.Node_ImportForeignSchemaStmt, *pg.Node_CreateAmStmt, *pg.Node_CreateEventTrigStmt,
		*pg.Node_AlterEventTrigStmt, *pg.Node_CreatePlangStmt, *pg.Node_CreatePublicationStmt,
		*pg.Node_AlterPublicationStmt, *pg.Node_CreateSubscriptionStmt, *pg.Node_AlterSubscriptionStmt,
		*pg.Node_DropSubscriptionStmt:
		return Admin
	}
	// EXECUTE (what it runs was prepared earlier) and anything new.
	return Unknown
}

// pgExplainRuns reports whether an EXPLAIN executes its statement: an
// ANALYZE option that is not explicitly false.
func pgExplainRuns(e *pg.ExplainStmt) bool {
	for _, o := range e.GetOptions() {
		d := o.GetDefElem()
		if d == nil || !strings.EqualFold(d.GetDefname(), "analyze") {
			continue
		}
		arg := d.GetArg()
		if arg == nil {
			return true
		}
		switch v := arg.GetNode().(type) {
		case *pg.Node_Boolean:
			return v.Boolean.GetBoolval()
		case *pg.Node_String_:
			switch strings.ToLower(v.String_.GetSval()) {
			case "false", "off", "no", "0":
				return false
			}
		case *pg.Node_Integer:
			return v.Integer.GetIval() != 0
		}
		return true
	}
	return false
}

// pgWalk visits every message of the tree under n and returns the highest
// class of what it finds: statements that write (a data-modifying CTE, an
// INSERT in a rule body), SELECT ... INTO, locking clauses, and calls of
// functions with side effects. It walks protobuf fields generically, so a
// node type added to the grammar is still searched.
func pgWalk(n *pg.Node) string {
	class := Read
	var visit func(m protoreflect.Message)
	visit = func(m protoreflect.Message) {
		switch v := m.Interface().(type) {
		case *pg.InsertStmt, *pg.UpdateStmt, *pg.DeleteStmt, *pg.MergeStmt:
			class = Max(class, Write)
		case *pg.SelectStmt:
			if v.GetIntoClause() != nil {
				class = Max(class, DDL) // SELECT ... INTO creates a table
			}
			if len(v.GetLockingClause()) > 0 {
				class = Max(class, Write) // FOR UPDATE / SHARE: row locks
			}
		case *pg.FuncCall:
			if names := v.GetFuncname(); len(names) > 0 {
				// The last part of a qualified name: pg_catalog.nextval.
				name := names[len(names)-1].GetString_().GetSval()
				if c := functionClass(name, pgFunctions, pgFunctionPrefixes); c != "" {
					class = Max(class, c)
				}
			}
		case *pg.DoStmt, *pg.CallStmt:
			class = Max(class, Admin)
		}
		m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				l := val.List()
				for i := 0; i < l.Len(); i++ {
					visit(l.Get(i).Message())
				}
			case fd.Message() != nil && !fd.IsMap():
				visit(val.Message())
			}
			return true
		})
	}
	visit(n.ProtoReflect())
	return class
}
