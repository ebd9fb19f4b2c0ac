package sqlrepl

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// demoSchema is the demo database of `make run`: fake cardholder data, so
// that masking shows at once. Every card number is a published test number
// of its brand (the ones payment processors document for sandboxes); none
// belongs to a real account. payments.note carries a PAN inside free text,
// which only the detectors catch; payments.card_number is caught by the
// masking.columns glob "*card_number*" too.
const demoSchema = `
CREATE TABLE customers (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	email      TEXT NOT NULL UNIQUE,
	country    TEXT NOT NULL,
	created_at TEXT NOT NULL
);
CREATE TABLE payments (
	id          INTEGER PRIMARY KEY,
	customer_id INTEGER NOT NULL REFERENCES customers(id),
	card_number TEXT NOT NULL,
	card_brand  TEXT NOT NULL,
	expiry      TEXT NOT NULL,
	amount      NUMERIC NOT NULL,
	currency    TEXT NOT NULL,
	status      TEXT NOT NULL,
	note        TEXT,
	created_at  TEXT NOT NULL
);
CREATE INDEX payments_customer ON payments(customer_id);
CREATE INDEX payments_status ON payments(status);
`

// demoCustomers and demoPayments are the rows.
var demoCustomers = [][]any{
	{1, "Alice Martin", "alice@example.com", "FR", "2024-01-15 09:12:00"},
	{2, "Bob Schmidt", "bob@example.org", "DE", "2024-02-03 14:40:00"},
	{3, "Chloé Dubois", "chloe@example.net", "BE", "2024-03-21 08:05:00"},
	{4, "Dmitri Ivanov", "dmitri@example.com", "EE", "2024-04-09 17:30:00"},
	{5, "Eve Johnson", "eve@example.co.uk", "GB", "2024-05-30 11:00:00"},
}

var demoPayments = [][]any{
	{1, 1, "4111111111111111", "visa", "12/28", "49.90", "EUR", "captured", nil, "2024-06-01 10:00:00"},
	{2, 1, "4111111111111111", "visa", "12/28", "12.00", "EUR", "refunded", "refund requested by phone", "2024-06-03 16:20:00"},
	{3, 2, "5555555555554444", "mastercard", "03/27", "250.00", "EUR", "captured", nil, "2024-06-04 09:45:00"},
	{4, 3, "378282246310005", "amex", "07/29", "1200.00", "EUR", "authorized", "customer wrote: my card 3782 822463 10005 is blocked", "2024-06-05 13:10:00"},
	{5, 4, "6011111111111117", "discover", "01/27", "19.99", "USD", "declined", "retry with 4242 4242 4242 4242 suggested", "2024-06-06 08:00:00"},
	{6, 5, "4242424242424242", "visa", "11/30", "75.50", "GBP", "captured", "", "2024-06-07 19:05:00"},
	{7, 2, "5105105105105100", "mastercard", "09/26", "5.00", "EUR", "captured", nil, "2024-06-08 07:30:00"},
	{8, 3, "3566002020360505", "jcb", "02/31", "310.25", "JPY", "chargeback", "dispute on 3566-0020-2036-0505", "2024-06-09 12:00:00"},
}

// WriteDemoDB writes the demo SQLite database to path, replacing any file
// there. It writes a temporary file beside path and renames it, so that a
// reader never sees a half-built database.
func WriteDemoDB(path string) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".demo-*.db")
	if err != nil {
		return fmt.Errorf("create demo database in %s: %w", dir, err)
	}
	tmp := f.Name()
	if err := f.Close(); err != nil {
		return fmt.Errorf("create demo database %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	db, err := sql.Open("sqlite", tmp)
	if err != nil {
		return fmt.Errorf("open demo database %s: %w", tmp, err)
	}
	if err := fillDemo(context.Background(), db); err != nil {
		return errors.Join(fmt.Errorf("fill demo database: %w", err), db.Close())
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("close demo database: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("install demo database: %w", err)
	}
	return nil
}

func fillDemo(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, demoSchema); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	for _, c := range demoCustomers {
		if _, err := tx.ExecContext(ctx, `INSERT INTO customers VALUES (?, ?, ?, ?, ?)`, c...); err != nil {
			return fmt.Errorf("insert customer %v: %w", c[0], err)
		}
	}
	for _, p := range demoPayments {
		if _, err := tx.ExecContext(ctx, `INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, p...); err != nil {
			return fmt.Errorf("insert payment %v: %w", p[0], err)
		}
	}
	return tx.Commit()
}
