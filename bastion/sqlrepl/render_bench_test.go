package sqlrepl

import (
	"io"
	"strconv"
	"testing"

	"github.com/bastion-dev/bastion/policy/mask"
)

// BenchmarkResultSinkCSV is the REPL's own share of streaming a result
// (bench.BenchmarkSQLStream end to end): rows of the benchmark's shape
// through masking and CSV encoding into a discarded stream, no database.
func BenchmarkResultSinkCSV(b *testing.B) {
	for _, c := range []struct {
		name   string
		masker func() (*mask.Engine, error)
	}{
		{"mask", func() (*mask.Engine, error) {
			return mask.New(mask.Options{Detectors: []string{"pan", "track", "expiry", "cvv"}, Columns: []string{"*card_number*"}})
		}},
		{"nomask", func() (*mask.Engine, error) { return nil, nil }},
	} {
		b.Run(c.name, func(b *testing.B) {
			m, err := c.masker()
			if err != nil {
				b.Fatal(err)
			}
			r, err := newREPL(Options{Target: Target{Name: "b", Kind: "postgres"}, Out: io.Discard, Err: io.Discard, Format: "csv", Masker: m})
			if err != nil {
				b.Fatal(err)
			}
			s := &resultSink{r: r, counts: mask.Counts{}, affected: -1}
			cols := []Column{{Name: "id", Numeric: true}, {Name: "holder"}, {Name: "card_number"}, {Name: "note"}, {Name: "amount", Numeric: true}}
			if err := s.Begin(cols); err != nil {
				b.Fatal(err)
			}
			const rows = 10000
			vals := make([][]Value, rows)
			for i := range vals {
				note := "order " + strconv.Itoa(i)
				if i%10 == 0 {
					note = "paid with 5555 5555 5555 4444"
				}
				vals[i] = []Value{{S: strconv.Itoa(i)}, {S: "Customer " + strconv.Itoa(i)}, {S: "4111111111111111"}, {S: note}, {S: strconv.Itoa(i) + ".50"}}
			}
			b.ReportAllocs()
			for b.Loop() {
				for _, v := range vals {
					if err := s.Row(v); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N)*rows/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
