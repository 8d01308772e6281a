package ldapauth

// Field cases (/work/shared/cases/README.md) on a real slapd with the sample
// directory of internal/slapd. Skipped with -short.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/toanc/aws-ecr-ldap/internal/slapd"
)

var shared struct {
	once sync.Once
	dir  string
	srv  *slapd.Server
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop slapd:", err)
		}
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// directory returns the slapd shared by the tests of this package, started on
// first use. Tests that stop slapd must start their own.
func directory(t *testing.T) *slapd.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("needs slapd; skipped with -short")
	}
	shared.once.Do(func() {
		if shared.err = slapd.Available(); shared.err != nil {
			return
		}
		if shared.dir, shared.err = os.MkdirTemp("", "ldapauth-slapd-"); shared.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shared.srv, shared.err = slapd.Start(ctx, slapd.Options{Dir: shared.dir})
	})
	if shared.err != nil {
		t.Fatalf("start slapd: %v", shared.err)
	}
	return shared.srv
}

// newClient returns a client for the sample directory, searching the whole suffix
// as the service account; change adjusts the config first.
func newClient(t *testing.T, srv *slapd.Server, change func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		URL:          mustURL(t, srv.SearchURL()),
		BindDN:       slapd.ServiceDN,
		BindPassword: slapd.ServicePassword,
		DialTimeout:  time.Second,
		Timeout:      5 * time.Second,
	}
	if change != nil {
		change(&cfg)
	}
	c, err := New(cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func user(t *testing.T, name string) slapd.User {
	t.Helper()
	u, ok := slapd.UserByName(name)
	if !ok {
		t.Fatalf("no sample user %q", name)
	}
	return u
}

type authCase struct {
	name, user, pass string
	want             error     // nil means success
	wantID           *Identity // checked on success when set
}

func runAuthCases(t *testing.T, c *Client, cases []authCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			id, err := c.Authenticate(context.Background(), tt.user, tt.pass)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("Authenticate(%q): got %v; want success", tt.user, err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("Authenticate(%q): got %v, %v; want %v", tt.user, id, err, tt.want)
			}
			if tt.wantID != nil && !sameIdentity(id, *tt.wantID) {
				t.Errorf("Authenticate(%q): got identity %+v; want %+v", tt.user, id, *tt.wantID)
			}
		})
	}
}

func TestA1FilterMetacharactersInUsername(t *testing.T) {
	srv := directory(t)
	bob := user(t, "bob")
	runAuthCases(t, newClient(t, srv, nil), []authCase{
		{"control: bob himself", "bob", bob.Password, nil, &Identity{DN: bob.DN, Name: "bob"}},
		{"bob)(uid=*", "bob)(uid=*", bob.Password, ErrInvalidCredentials, nil},
		{"x))((cn=bob", "x))((cn=bob", bob.Password, ErrInvalidCredentials, nil},
		{"*)(uid=bob", "*)(uid=bob", bob.Password, ErrInvalidCredentials, nil},
		{"bob)(|(uid=*", "bob)(|(uid=*", bob.Password, ErrInvalidCredentials, nil},
		{`bob\29`, `bob\29`, bob.Password, ErrInvalidCredentials, nil},
		{"bob with a NUL escape", `bob\00`, bob.Password, ErrInvalidCredentials, nil},
	})
}

func TestA2WildcardUsernames(t *testing.T) {
	srv := directory(t)
	alice := user(t, "alice")
	runAuthCases(t, newClient(t, srv, nil), []authCase{
		{"control: alice", "alice", alice.Password, nil, nil},
		{"*", "*", alice.Password, ErrInvalidCredentials, nil},
		{"al*", "al*", alice.Password, ErrInvalidCredentials, nil},
		{"*ice", "*ice", alice.Password, ErrInvalidCredentials, nil},
		{"a*e", "a*e", alice.Password, ErrInvalidCredentials, nil},
	})
}

func TestA3EmptyPasswordSendsNoBind(t *testing.T) {
	srv := directory(t)
	c := newClient(t, srv, nil)
	bob := user(t, "bob")

	before := srv.BindCount()
	_, err := c.Authenticate(context.Background(), "bob", "")
	if !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("empty password: got %v; want ErrInvalidCredentials", err)
	}
	if got := srv.BindCount(); got != before {
		t.Errorf("binds after an empty-password attempt: got %d; want %d (unchanged)", got, before)
	}

	// The control: a wrong password does reach slapd (service bind + user bind), so
	// BindCount would have seen an empty-password bind too.
	_, err = c.Authenticate(context.Background(), "bob", bob.Password+"-wrong")
	if !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("wrong password: got %v; want ErrInvalidCredentials", err)
	}
	if got, want := srv.BindCount(), before+2; got != want {
		t.Errorf("binds after a wrong-password attempt: got %d; want %d", got, want)
	}
}

func TestA4A5PasswordsPassedByteForByte(t *testing.T) {
	srv := directory(t)
	bob, dave := user(t, "bob"), user(t, "dave")
	runAuthCases(t, newClient(t, srv, nil), []authCase{
		{"A4 colon", "bob", bob.Password, nil, &Identity{DN: bob.DN, Name: "bob"}},
		{"A5 metacharacters", "dave", dave.Password, nil, &Identity{DN: dave.DN, Name: "dave"}},
		{"A5 escaped form is a different password", "dave", `Pa\28ss\29\2a\5c1`, ErrInvalidCredentials, nil},
		{"A5 truncated at the backslash", "dave", `Pa(ss)*`, ErrInvalidCredentials, nil},
	})
}

func TestA6UTF8NameAndDN(t *testing.T) {
	srv := directory(t)
	j := user(t, "jürgen")
	runAuthCases(t, newClient(t, srv, nil), []authCase{
		{"as stored", "jürgen", j.Password, nil, &Identity{DN: j.DN, Name: "jürgen"}},
		{"other case gives the directory's spelling", "Jürgen", j.Password, nil, &Identity{DN: j.DN, Name: "jürgen"}},
		{"wrong non-ASCII password", "jürgen", "grüsse-密码-7", ErrInvalidCredentials, nil},
		// slapd matches uid after Unicode normalisation; the identity is still spelled
		// as stored, never as typed.
		{"decomposed ü gives the stored spelling", "ju\u0308rgen", j.Password, nil, &Identity{DN: j.DN, Name: "jürgen"}},
	})
}

func TestA8WrongPassword(t *testing.T) {
	srv := directory(t)
	runAuthCases(t, newClient(t, srv, nil), []authCase{
		{"wrong password", "carol", "not-carols", ErrInvalidCredentials, nil},
		{"no such user", "mallory", "whatever", ErrInvalidCredentials, nil},
		{"service account is not a login", "gateway, reader", slapd.ServicePassword, ErrInvalidCredentials, nil},
	})
}

func TestA10TwoEntriesForOneName(t *testing.T) {
	srv := directory(t)
	twin := user(t, "twin")
	runAuthCases(t, newClient(t, srv, nil), []authCase{
		{"whole suffix finds two", "twin", twin.Password, ErrInvalidCredentials, nil},
	})
	// The control: under ou=people only one twin exists and the same password works.
	runAuthCases(t, newClient(t, srv, func(c *Config) {
		c.URL = mustURL(t, srv.URL()+"/"+slapd.PeopleDN+"?uid?one?(objectClass=inetOrgPerson)")
	}), []authCase{{"one OU finds one", "twin", twin.Password, nil, &Identity{DN: twin.DN, Name: "twin"}}})
	// More than the size limit of two: every entry has objectClass, so a filter on
	// it alone with base=suffix would be refused as ambiguous (result code 4 path).
	runAuthCases(t, newClient(t, srv, func(c *Config) {
		c.URL = mustURL(t, srv.URL()+"/"+slapd.BaseDN+"?objectClass?sub")
	}), []authCase{{"size limit exceeded", "inetOrgPerson", twin.Password, ErrInvalidCredentials, nil}})
}

func TestA11RequiredGroup(t *testing.T) {
	srv := directory(t)
	alice, bob, carol, dave := user(t, "alice"), user(t, "bob"), user(t, "carol"), user(t, "dave")
	t.Run("groupOfNames with an escaped comma", func(t *testing.T) {
		runAuthCases(t, newClient(t, srv, func(c *Config) { c.RequireGroups = []string{slapd.GroupOps} }), []authCase{
			{"alice is a member", "alice", alice.Password, nil, &Identity{DN: alice.DN, Name: "alice"}},
			{"dave is a member", "dave", dave.Password, nil, nil},
			{"carol is in no group", "carol", carol.Password, ErrForbidden, nil},
			{"bob is in another group", "bob", bob.Password, ErrForbidden, nil},
			{"wrong password is 401 not 403", "carol", "nope", ErrInvalidCredentials, nil},
		})
	})
	t.Run("posixGroup by memberUid", func(t *testing.T) {
		runAuthCases(t, newClient(t, srv, func(c *Config) {
			c.RequireGroups, c.GroupMemberAttribute = []string{slapd.GroupPosix}, MemberUIDAttribute
		}), []authCase{
			{"bob is a member", "bob", bob.Password, nil, nil},
			{"BOB matches as the directory spells him", "BOB", bob.Password, nil, &Identity{DN: bob.DN, Name: "bob"}},
			{"carol is not", "carol", carol.Password, ErrForbidden, nil},
		})
	})
	t.Run("group that does not exist", func(t *testing.T) {
		runAuthCases(t, newClient(t, srv, func(c *Config) {
			c.RequireGroups = []string{"cn=nobody,ou=groups," + slapd.BaseDN}
		}), []authCase{{"is a configuration fault", "alice", alice.Password, ErrUnavailable, nil}})
	})
}

func TestA12ServiceAccountWithEscapedComma(t *testing.T) {
	srv := directory(t)
	alice := user(t, "alice")
	c := newClient(t, srv, nil)
	before := len(srv.BindDNs())
	if _, err := c.Authenticate(context.Background(), "alice", alice.Password); err != nil {
		t.Fatalf("Authenticate(alice): %v", err)
	}
	// slapd logs DNs in its own spelling (the comma as \2C), so compare as DNs.
	got := srv.BindDNs()[before:]
	want := []string{slapd.ServiceDN, alice.DN}
	if !slices.EqualFunc(got, want, sameDN) {
		t.Errorf("binds seen by slapd: got %q; want %q", got, want)
	}

	// A service account the directory refuses is a fault, never a wrong user password.
	runAuthCases(t, newClient(t, srv, func(c *Config) { c.BindPassword = "wrong" }), []authCase{
		{"service password wrong", "alice", alice.Password, ErrUnavailable, nil},
	})
	runAuthCases(t, newClient(t, srv, func(c *Config) {
		c.BindDN = "cn=gateway reader,ou=services," + slapd.BaseDN
	}), []authCase{{"unescaped service DN", "alice", alice.Password, ErrUnavailable, nil}})
}

func TestOutageIsNeverInvalidCredentials(t *testing.T) {
	srv := ownDirectory(t, slapd.Options{})
	c := newClient(t, srv, nil)
	alice := user(t, "alice")

	runAuthCases(t, c, []authCase{{"up", "alice", alice.Password, nil, nil}})
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	runAuthCases(t, c, []authCase{
		{"down, right password", "alice", alice.Password, ErrUnavailable, nil},
		{"down, wrong password", "alice", "wrong", ErrUnavailable, nil},
	})
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	runAuthCases(t, c, []authCase{{"up again", "alice", alice.Password, nil, nil}})
}

// sameIdentity compares DN and Name, and Groups (as a set of DNs) when want has them.
func sameIdentity(got, want Identity) bool {
	if got.DN != want.DN || got.Name != want.Name {
		return false
	}
	return want.Groups == nil || sameDNSet(got.Groups, want.Groups)
}

func sameDNSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y string) bool { return sameDNFold(x, y) }) {
			return false
		}
	}
	return true
}

func sameDNFold(a, b string) bool {
	da, errA := ldap.ParseDN(a)
	db, errB := ldap.ParseDN(b)
	return errA == nil && errB == nil && da.EqualFold(db)
}

func sameDN(a, b string) bool {
	da, errA := ldap.ParseDN(a)
	db, errB := ldap.ParseDN(b)
	return errA == nil && errB == nil && da.Equal(db)
}
