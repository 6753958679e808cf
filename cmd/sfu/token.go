package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/tessera-rtc/tessera/rooms"
)

// runToken is `sfu token`: it prints a join token for one room, signed with
// a key of the configuration (the first one, or --kid).
func runToken(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sfu token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "rooms.yaml whose auth.keys sign the token (default: the embedded configuration, which has none)")
	room := fs.String("room", "", "the room the token opens (required)")
	name := fs.String("name", "", "the participant's name, imposed by the token (default: the client chooses)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	noPublish := fs.Bool("no-publish", false, "the participant may not publish")
	noSubscribe := fs.Bool("no-subscribe", false, "the participant may not subscribe")
	admin := fs.Bool("admin", false, "the participant may mute others' tracks")
	kid := fs.String("kid", "", "id of the key to sign with (default: the first of auth.keys)")
	link := fs.String("link", "", "print a link to the server's page at this base URL (e.g. https://sfu.example.com/) that joins with the token, instead of the token alone")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sfu token --room R [--name N] [--ttl 1h] [--no-publish] [--no-subscribe] [--admin] [--config rooms.yaml] [--kid K] [--link URL]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case *room == "":
		fs.Usage()
		return errors.New("--room is required")
	case *ttl <= 0:
		return fmt.Errorf("--ttl %s: must be positive", *ttl)
	}
	var base *url.URL
	if *link != "" {
		u, err := url.Parse(*link)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--link %q: want an http or https URL such as https://sfu.example.com/", *link)
		}
		base = u
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if len(cfg.Auth.Keys) == 0 {
		return errors.New("the configuration has no auth.keys to sign with (pass --config)")
	}
	rc, err := roomsConfig(cfg)
	if err != nil {
		return err
	}
	token, err := rc.Auth.Issue(rooms.Grant{
		Room: *room,
		Name: *name,
		Permissions: rooms.Permissions{
			Publish:   !*noPublish,
			Subscribe: !*noSubscribe,
			Admin:     *admin,
		},
		Expires: time.Now().Add(*ttl),
	}, *kid)
	if err != nil {
		return err
	}
	if base != nil {
		token = joinLink(base, *room, *name, token)
	}
	_, err = fmt.Fprintln(stdout, token)
	return err
}

// joinLink is the page at base opening room as name with token. The token
// goes in the fragment, which the browser does not send to the server: it
// stays out of access logs and Referer headers.
func joinLink(base *url.URL, room, name, token string) string {
	u := *base
	if u.Path == "" {
		u.Path = "/"
	}
	q := url.Values{"room": {room}}
	if name != "" {
		q.Set("name", name)
	}
	u.RawQuery = q.Encode()
	u.Fragment = ""
	return u.String() + "#token=" + url.QueryEscape(token)
}
