package inspect

import (
	"embed"
	"io/fs"
	"net/http"
)

// static holds the /debug page: HTML, CSS and JavaScript with no build
// step and nothing loaded from elsewhere.
//
//go:embed static
var static embed.FS

// contentSecurity lets the page load only its own files and talk only to
// its own server.
const contentSecurity = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// page serves /debug.
func page() http.Handler {
	html, err := static.ReadFile("static/debug.html")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", contentSecurity)
		_, _ = w.Write(html)
	})
}

// staticFiles serves /debug/static/: the page's script and style sheet.
func staticFiles() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err)
	}
	return http.StripPrefix("/debug/static/", http.FileServerFS(sub))
}
