package sqlclass

import (
	"strings"
	"sync"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	// The parser builds literal values through a driver package; the test
	// driver is its self-contained one (no TiDB types).
	_ "github.com/pingcap/tidb/pkg/parser/test_driver"
)

// A TiDB parser is not safe for concurrent use; sessions classify at once.
var mysqlParsers = sync.Pool{New: func() any { return parser.New() }}

// mysqlModes are the SQL modes a statement is read under. The server's
// sql_mode changes where a literal ends: with NO_BACKSLASH_ESCAPES, 'a\'
// is a whole string and what follows is code. A statement is classified in
// both readings and takes the higher class (and is unknown if either fails),
// so that the bastion and the server cannot disagree about what is inside a
// literal. ANSI_QUOTES needs no reading of its own: "a\" as an identifier
// ends where NO_BACKSLASH_ESCAPES ends the string, and parsing under it
// would make every "..." string where the grammar wants a literal (SHOW
// TABLES LIKE "x%") fail.
var mysqlModes = []mysql.SQLMode{mysql.ModeNone, mysql.ModeNoBackslashEscapes}

// classifyMySQL parses sql with TiDB's MySQL grammar and classifies each
// statement in it. TiDB's lexer reads the text of executable comments
// (/*! ... */, /*!50000 ... */) as code, as MySQL and MariaDB run it;
// MariaDB's /*M! ... */ form is a plain comment to TiDB, so a statement
// holding one is unknown rather than read past.
func classifyMySQL(sql string) string {
	if len(sql) > maxBytes || strings.Contains(strings.ToUpper(sql), "/*M!") {
		return Unknown
	}
	p := mysqlParsers.Get().(*parser.Parser)
	defer mysqlParsers.Put(p)
	class := Read
	for _, mode := range mysqlModes {
		p.SetSQLMode(mode)
		stmts, _, err := p.Parse(sql, "", "")
		if err != nil || len(stmts) == 0 {
			return Unknown
		}
		for _, s := range stmts {
			class = Max(class, mysqlStatement(s))
		}
	}
	return class
}

// mysqlStatement classifies one statement: its kind, raised by what its
// tree holds.
func mysqlStatement(s ast.StmtNode) string {
	class := mysqlTopClass(s)
	if class == Unknown {
		return Unknown
	}
	w := &mysqlWalker{class: class}
	s.Accept(w)
	return w.class
}

func mysqlTopClass(s ast.StmtNode) string {
	switch v := s.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt, *ast.ShowStmt, *ast.DoStmt, *ast.UseStmt, *ast.HelpStmt:
		return Read
	case *ast.ExplainStmt:
		if v.Analyze {
			return mysqlStatement(v.Stmt)
		}
		return Read
	case *ast.BeginStmt, *ast.CommitStmt, *ast.RollbackStmt, *ast.SavepointStmt, *ast.ReleaseSavepointStmt:
		// Transaction control changes no data by itself.
		return Read
	case *ast.InsertStmt, *ast.UpdateStmt, *ast.DeleteStmt:
		return Write
	case *ast.LoadDataStmt, *ast.ImportIntoStmt:
		return Admin // reads a file on the server (or the client's, with LOCAL)
	case *ast.CreateTableStmt, *ast.AlterTableStmt, *ast.DropTableStmt, *ast.CreateIndexStmt, *ast.DropIndexStmt,
		*ast.CreateViewStmt, *ast.RenameTableStmt, *ast.TruncateTableStmt, *ast.CreateDatabaseStmt,
		*ast.DropDatabaseStmt, *ast.AlterDatabaseStmt, *ast.CreateSequenceStmt, *ast.DropSequenceStmt,
		*ast.AlterSequenceStmt, *ast.AnalyzeTableStmt, *ast.OptimizeTableStmt, *ast.RepairTableStmt,
		*ast.DropProcedureStmt, *ast.CreateStatisticsStmt, *ast.DropStatisticsStmt:
		return DDL
	case *ast.GrantStmt, *ast.RevokeStmt, *ast.GrantRoleStmt, *ast.RevokeRoleStmt, *ast.GrantProxyStmt,
		*ast.CreateUserStmt, *ast.AlterUserStmt, *ast.DropUserStmt, *ast.RenameUserStmt, *ast.SetStmt,
		*ast.SetPwdStmt, *ast.SetRoleStmt, *ast.SetDefaultRoleStmt, *ast.KillStmt,
		*ast.FlushStmt, *ast.ShutdownStmt, *ast.RestartStmt, *ast.CallStmt, *ast.PrepareStmt,
		*ast.DeallocateStmt, *ast.LockTablesStmt, *ast.UnlockTablesStmt, *ast.BinlogStmt, *ast.AlterInstanceStmt:
		return Admin
	}
	// EXECUTE (what it runs was prepared from a string) and TiDB's own
	// statements.
	return Unknown
}

// mysqlWalker raises a statement's class by what its tree holds: nested
// writes, SELECT ... INTO OUTFILE/DUMPFILE, locking reads and calls of
// functions with side effects.
type mysqlWalker struct{ class string }

func (w *mysqlWalker) Enter(n ast.Node) (ast.Node, bool) {
	switch v := n.(type) {
	case *ast.InsertStmt, *ast.UpdateStmt, *ast.DeleteStmt:
		w.class = Max(w.class, Write)
	case *ast.SelectStmt:
		if v.LockInfo != nil && v.LockInfo.LockType != ast.SelectLockNone {
			w.class = Max(w.class, Write) // FOR UPDATE, LOCK IN SHARE MODE
		}
		w.into(v.SelectIntoOpt)
	case *ast.FuncCallExpr:
		if c := functionClass(v.FnName.L, mysqlFunctions, nil); c != "" {
			w.class = Max(w.class, c)
		}
	}
	return n, false
}

// into raises the class for SELECT ... INTO: a file on the server is
// admin; INTO @variables only sets session variables.
func (w *mysqlWalker) into(o *ast.SelectIntoOption) {
	if o != nil && o.Tp != ast.SelectIntoVars {
		w.class = Max(w.class, Admin)
	}
}

func (w *mysqlWalker) Leave(n ast.Node) (ast.Node, bool) { return n, true }
