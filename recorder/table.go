package recorder

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteSessionTable writes sessions as the readable table that `bastion
// sessions` and `ssh bastion sessions` show: id, start, duration, user,
// target, state, exit, masked counts, client. Lines end in \n.
func WriteSessionTable(w io.Writer, list []SessionMeta) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTART\tDURATION\tUSER\tTARGET\tSTATE\tEXIT\tMASKED\tCLIENT")
	for _, m := range list {
		dur, exit := "-", "-"
		if !m.End.IsZero() {
			dur = m.End.Sub(m.Start).Round(time.Second).String()
		}
		if m.ExitStatus != nil {
			exit = fmt.Sprint(*m.ExitStatus)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Start.Local().Format("2006-01-02 15:04:05"),
			dur, m.User, dash(m.Target), m.State, exit, MaskedSummary(m.Masked), m.ClientAddr)
	}
	return tw.Flush()
}

// MaskedSummary is the masked-values column: "pan=2,cvv=1", or "-".
func MaskedSummary(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
