package sqlrepl

import (
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// runRows streams every result set of rows to s; the MySQL and SQLite
// engines share it (both go through database/sql, on one dedicated
// *sql.Conn so that session state such as a transaction stays on one
// server connection).
func runRows(rows *sql.Rows, s sink) (cols int, err error) {
	defer rows.Close()
	for {
		types, err := rows.ColumnTypes()
		if err != nil {
			return 0, err
		}
		if len(types) == 0 {
			// A statement without a result set (INSERT, CREATE…); let
			// the engine say what it did.
			return 0, rows.Err()
		}
		cols += len(types)
		cc := make([]Column, len(types))
		for i, t := range types {
			cc[i] = Column{Name: t.Name(), Numeric: numericType(t.DatabaseTypeName())}
		}
		raw := make([]any, len(types))
		ptrs := make([]any, len(types))
		for i := range raw {
			ptrs[i] = &raw[i]
		}
		vals := make([]Value, len(types))
		began := false
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				return cols, err
			}
			if !began {
				// A column without a declared type (SQLite expressions)
				// is numeric when its first value is a number.
				for i, v := range raw {
					if cc[i].Numeric || types[i].DatabaseTypeName() != "" {
						continue
					}
					switch v.(type) {
					case int64, float64:
						cc[i].Numeric = true
					}
				}
				if err := s.Begin(cc); err != nil {
					return cols, err
				}
				began = true
			}
			for i, v := range raw {
				vals[i] = formatValue(v)
			}
			if err := s.Row(vals); err != nil {
				return cols, err
			}
		}
		if err := rows.Err(); err != nil {
			return cols, err
		}
		if !began {
			if err := s.Begin(cc); err != nil {
				return cols, err
			}
		}
		if err := s.End("", -1); err != nil {
			return cols, err
		}
		if !rows.NextResultSet() {
			return cols, rows.Err()
		}
	}
}

// numericType reports whether a driver's column type name is a number.
func numericType(t string) bool {
	t = strings.ToUpper(t)
	for _, k := range []string{"INT", "DEC", "NUM", "FLOAT", "DOUBLE", "REAL"} {
		if strings.Contains(t, k) {
			return true
		}
	}
	return false
}

// formatValue renders a database/sql value as the server's CLI would.
func formatValue(v any) Value {
	switch x := v.(type) {
	case nil:
		return Value{Null: true}
	case []byte:
		if utf8.Valid(x) {
			return Value{S: string(x)}
		}
		return Value{S: `\x` + hex.EncodeToString(x)}
	case string:
		return Value{S: x}
	case int64:
		return Value{S: strconv.FormatInt(x, 10)}
	case uint64:
		return Value{S: strconv.FormatUint(x, 10)}
	case float64:
		return Value{S: strconv.FormatFloat(x, 'g', -1, 64)}
	case float32:
		return Value{S: strconv.FormatFloat(float64(x), 'g', -1, 32)}
	case bool:
		if x {
			return Value{S: "1"}
		}
		return Value{S: "0"}
	case time.Time:
		if x.Hour() == 0 && x.Minute() == 0 && x.Second() == 0 && x.Nanosecond() == 0 {
			return Value{S: x.Format(time.DateOnly)}
		}
		return Value{S: x.Format("2006-01-02 15:04:05.999999999Z07:00")}
	}
	return Value{S: fmt.Sprint(v)}
}
