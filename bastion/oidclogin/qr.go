package oidclogin

import (
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// QR renders url as a QR code for a terminal, two modules per character
// cell with Unicode half blocks, so that a phone can open the verification
// page without anyone typing it. It paints black on bright white with ANSI
// colours, because a QR code must be dark on light and terminal themes are
// not: write it only to a terminal (stderr when it is one), never to a file
// or to stdout, which carries the certificate.
func QR(url string) (string, error) {
	q, err := qrcode.New(url, qrcode.Low)
	if err != nil {
		return "", fmt.Errorf("oidclogin: QR code for %d-byte URL: %w", len(url), err)
	}
	bm := q.Bitmap() // includes the quiet zone scanners need
	var b strings.Builder
	for y := 0; y < len(bm); y += 2 {
		b.WriteString("\x1b[30;107m")
		for x := range bm[y] {
			top := bm[y][x]
			bottom := y+1 < len(bm) && bm[y+1][x]
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteString("\x1b[0m\n")
	}
	return b.String(), nil
}
