package keys

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/microctl/microctl/pkg/registry"
)

// Defaults.
const (
	DefaultPath           = "micro/config/jwt"
	DefaultLegacyPath     = "micro/config/jwt-key"
	DefaultMaxTokenTTL    = time.Hour
	DefaultRotationPeriod = 30 * 24 * time.Hour
	DefaultLockWait       = 30 * time.Second
	// LockPrefix and AuditPrefix hold microctl's own records, outside any
	// go-config prefix, so a config watcher never sees them.
	LockPrefix  = "microctl/locks/"
	AuditPrefix = "microctl/audit/"
)

// Backend is the Consul access the store needs; *registry.Client is one.
// Tests pass a fake that embeds a real client and overrides one method.
type Backend interface {
	KVGet(ctx context.Context, key string) (*registry.KVEntry, error)
	KVList(ctx context.Context, prefix string) (registry.KVListing, error)
	KVKeys(ctx context.Context, prefix string) ([]string, error)
	KVWatch(ctx context.Context, key string, index uint64, wait time.Duration) (*registry.KVEntry, uint64, error)
	Commit(ctx context.Context, txn *registry.Txn) error
	AcquireLock(ctx context.Context, key string, value []byte, opts ...registry.LockOption) (*registry.Lock, error)
	Token(ctx context.Context) (registry.TokenStatus, error)
}

// Options configure a Store or a Verifier.
type Options struct {
	Path       string
	LegacyPath string
	LockWait   time.Duration
	Leeway     time.Duration
	Actor      string
	Clock      func() time.Time
	Rand       io.Reader
	// OnError and OnUpdate let a Verifier's owner log what the watcher
	// sees; both run on the watcher's goroutine.
	OnError  func(error)
	OnUpdate func(*KeySet)
	// Wait is the blocking query's wait time of a Verifier.
	Wait time.Duration
	// LegacySecret: a Verifier also verifies kid-less HS256 tokens with
	// the secret at LegacyPath (WithLegacySecret).
	LegacySecret bool
	// KEK seals private keys written and opens sealed ones (seal.go).
	KEK *KEK
	// AuditKeep, when positive, is how long audit records are kept
	// (audit.go).
	AuditKeep time.Duration
}

// Option sets one Options field.
type Option func(*Options)

// WithPath sets the ring's KV path (default micro/config/jwt).
func WithPath(p string) Option { return func(o *Options) { o.Path = p } }

// WithLegacyPath sets where legacy mode writes {"key": secret}.
func WithLegacyPath(p string) Option { return func(o *Options) { o.LegacyPath = p } }

// WithLockWait sets how long a write waits for another operator's lock.
func WithLockWait(d time.Duration) Option { return func(o *Options) { o.LockWait = d } }

// WithLeeway sets the clock skew tolerated on exp, nbf and iat.
func WithLeeway(d time.Duration) Option { return func(o *Options) { o.Leeway = d } }

// WithActor names who makes the changes in audit records.
func WithActor(who string) Option { return func(o *Options) { o.Actor = who } }

// WithClock replaces time.Now, for tests that travel in time.
func WithClock(f func() time.Time) Option { return func(o *Options) { o.Clock = f } }

// WithRand replaces crypto/rand.
func WithRand(r io.Reader) Option { return func(o *Options) { o.Rand = r } }

// WithOnError is called with every error a Verifier's watcher meets.
func WithOnError(f func(error)) Option { return func(o *Options) { o.OnError = f } }

// WithOnUpdate is called with each key set a Verifier loads.
func WithOnUpdate(f func(*KeySet)) Option { return func(o *Options) { o.OnUpdate = f } }

// WithWait sets a Verifier's blocking query wait time.
func WithWait(d time.Duration) Option { return func(o *Options) { o.Wait = d } }

func newOptions(opts ...Option) (Options, error) {
	o := Options{
		Path:       DefaultPath,
		LegacyPath: DefaultLegacyPath,
		LockWait:   DefaultLockWait,
		Leeway:     DefaultLeeway,
		Clock:      time.Now,
		Rand:       rand.Reader,
		Wait:       5 * time.Minute,
	}
	for _, opt := range opts {
		opt(&o)
	}
	var err error
	if o.Path, err = cleanPath("path", o.Path); err != nil {
		return o, err
	}
	if o.LegacyPath, err = cleanPath("legacy path", o.LegacyPath); err != nil {
		return o, err
	}
	if strings.HasPrefix(o.LegacyPath+"/", o.Path+"/") {
		return o, fmt.Errorf("legacy path %s must not be under the ring's path %s/", o.LegacyPath, o.Path)
	}
	if strings.HasPrefix(o.Path+"/", "microctl/") {
		return o, fmt.Errorf("path %s: microctl/ holds microctl's own locks and audit records", o.Path)
	}
	if o.Leeway < 0 {
		return o, errors.New("leeway must not be negative")
	}
	if o.Actor == "" {
		o.Actor = defaultActor()
	}
	return o, nil
}

var pathRe = regexp.MustCompile(`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$`)

func cleanPath(what, p string) (string, error) {
	p = strings.Trim(p, "/")
	if !pathRe.MatchString(p) {
		return "", fmt.Errorf("%s %q: use segments of letters, digits, '.', '_' and '-' separated by '/'", what, p)
	}
	return p, nil
}

// defaultActor is $USER@hostname, what an audit record says about who.
func defaultActor() string {
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		} else {
			name = fmt.Sprintf("uid%d", os.Getuid())
		}
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return name + "@" + host
}

// Store reads and changes one key ring in Consul KV.
//
// Layout under Path (every value a JSON object, so go-config's Consul
// source can read the whole prefix):
//
//	<path>/ring           public facts: states, times, policy (Ring)
//	<path>/jwks           public JWKS of every verifiable key (JWKS)
//	<path>/private/<kid>  one private key, PKCS#8 PEM (privateDoc)
//
// Verifiers need <path>/jwks only; signers need <path>/ring and
// <path>/private/<current kid>. An ACL can grant read on <path>/ and deny
// <path>/private/ to gateways. Locks and audit records live under
// microctl/locks/<path> and microctl/audit/<path>/, outside the prefix.
type Store struct {
	kv Backend
	o  Options
	// beforeCommit runs between planning and committing; tests use it to
	// make another writer win the race.
	beforeCommit func(lock *registry.Lock)
	// fence, when set, is another lock whose session every write also
	// checks: the rotator's leadership (rotator.go).
	fence *registry.Lock
}

// NewStore returns a store for the ring at WithPath.
func NewStore(kv Backend, opts ...Option) (*Store, error) {
	o, err := newOptions(opts...)
	if err != nil {
		return nil, err
	}
	return &Store{kv: kv, o: o}, nil
}

// Path is the ring's KV path.
func (s *Store) Path() string { return s.o.Path }

// LegacyPath is where legacy mode writes the shared secret.
func (s *Store) LegacyPath() string { return s.o.LegacyPath }

// RingKey is the KV key of the ring document.
func (s *Store) RingKey() string { return s.o.Path + "/ring" }

// JWKSKey is the KV key of the public JWKS.
func (s *Store) JWKSKey() string { return s.o.Path + "/jwks" }

// PrivateKey is the KV key of kid's private half.
func (s *Store) PrivateKey(kid string) string { return s.o.Path + "/private/" + kid }

// LockKey is the KV key of the ring's lock.
func (s *Store) LockKey() string { return LockPrefix + s.o.Path }

// AuditPrefix is where the ring's audit records go.
func (s *Store) AuditPrefix() string { return AuditPrefix + s.o.Path + "/" }

func (s *Store) now() time.Time { return s.o.Clock().UTC().Truncate(time.Second) }

type privEntry struct {
	doc   privateDoc
	mat   *material
	index uint64
}

// Snapshot is the whole ring as read at one moment, with the ModifyIndex
// of every value for the check-and-set of the next write.
type Snapshot struct {
	Ring      *Ring
	RingIndex uint64
	JWKS      *KeySet
	JWKSIndex uint64
	private   map[string]privEntry
	Legacy    *registry.KVEntry
	// Other keys under the prefix that microctl did not write; each is a
	// JSON object (anything else is a CorruptError).
	Other []string
	// Missing lists the kids of keys that are not retired yet have no
	// private key stored: a broken ring (see Store.Health).
	Missing []string
}

// Load reads every value under the ring's path and checks it: each is a
// JSON object, the ring is consistent, every private key matches its kid
// and every key the ring needs is there. A write is only ever based on a
// snapshot that passed Load.
func (s *Store) Load(ctx context.Context) (*Snapshot, error) {
	prefix := s.o.Path + "/"
	l, err := s.kv.KVList(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if l.FilteredByACL {
		return nil, &registry.KVDeniedError{Key: prefix, Access: "write", Err: &registry.PermissionError{
			Detail: "Consul hid some keys under it from this token; changing the ring needs read and write on the whole prefix",
			Err:    errors.New("results filtered by ACLs"),
		}}
	}
	snap := &Snapshot{private: map[string]privEntry{}}
	var ringEntry, jwksEntry *registry.KVEntry
	// A sealed ring says so, from its public ring document, before any
	// private key is touched: one line, whatever the number of keys.
	for i := range l.Entries {
		if e := &l.Entries[i]; e.Key == s.RingKey() {
			if r, err := ParseRing(e.Value); err == nil {
				if err := s.checkSealing(r); err != nil {
					return nil, err
				}
			}
		}
	}
	for i := range l.Entries {
		e := &l.Entries[i]
		if strings.HasSuffix(e.Key, "/") && len(e.Value) == 0 {
			continue // a folder marker made by the UI or `consul kv put dir/`
		}
		if err := requireObject(e.Value); err != nil {
			return nil, &CorruptError{Key: e.Key, Err: err}
		}
		switch {
		case e.Key == s.RingKey():
			ringEntry = e
		case e.Key == s.JWKSKey():
			jwksEntry = e
		case strings.HasPrefix(e.Key, s.PrivateKey("")):
			kid := strings.TrimPrefix(e.Key, s.PrivateKey(""))
			var d privateDoc
			if err := decodeObject(e.Value, &d); err != nil {
				return nil, &CorruptError{Key: e.Key, Err: err}
			}
			if d.Kid != kid {
				return nil, &CorruptError{Key: e.Key, Err: fmt.Errorf("holds kid %q", d.Kid)}
			}
			m, err := s.openDoc(d)
			if err != nil {
				var sealed *SealedError
				var wrong *WrongKEKError
				if errors.As(err, &sealed) || errors.As(err, &wrong) {
					return nil, err
				}
				return nil, &CorruptError{Key: e.Key, Err: err}
			}
			snap.private[kid] = privEntry{doc: d, mat: m, index: e.ModifyIndex}
		default:
			snap.Other = append(snap.Other, e.Key)
		}
	}
	if ringEntry == nil {
		if jwksEntry != nil || len(snap.private) > 0 {
			return nil, &CorruptError{Key: s.RingKey(), Err: errors.New("missing, yet the JWKS or private keys are there")}
		}
		return snap, nil
	}
	if snap.Ring, err = ParseRing(ringEntry.Value); err != nil {
		return nil, &CorruptError{Key: ringEntry.Key, Err: err}
	}
	snap.RingIndex = ringEntry.ModifyIndex
	if jwksEntry == nil {
		return nil, &CorruptError{Key: s.JWKSKey(), Err: errors.New("missing")}
	}
	if snap.JWKS, err = ParseJWKS(jwksEntry.Value); err != nil {
		return nil, &CorruptError{Key: jwksEntry.Key, Err: err}
	}
	snap.JWKSIndex = jwksEntry.ModifyIndex
	for _, k := range snap.Ring.Keys {
		p, ok := snap.private[k.Kid]
		if k.State == Retired {
			continue
		}
		if !ok {
			// A missing private key makes the ring broken, not unreadable:
			// the plans know what to do without it (rotate moves a
			// missing current key out of the way, replaces a missing next
			// one), as long as its public half is still in the JWKS.
			if !k.Alg.Symmetric() && !snap.JWKS.Has(k.Kid) {
				return nil, &CorruptError{Key: s.PrivateKey(k.Kid), Err: fmt.Errorf("missing, and the JWKS has no public key for %s key %s either", k.State, k.Kid)}
			}
			snap.Missing = append(snap.Missing, k.Kid)
			continue
		}
		if p.doc.Alg != k.Alg {
			return nil, &CorruptError{Key: s.PrivateKey(k.Kid), Err: fmt.Errorf("alg %s, the ring says %s", p.doc.Alg, k.Alg)}
		}
	}
	if snap.Ring.LegacyPath != "" {
		if snap.Legacy, err = s.kv.KVGet(ctx, snap.Ring.LegacyPath); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

// Ring reads the ring document alone: what `key show` and signers need,
// readable by a token that may not read private keys.
func (s *Store) Ring(ctx context.Context) (*Ring, error) {
	e, err := s.kv.KVGet(ctx, s.RingKey())
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, &NoRingError{Path: s.o.Path}
	}
	r, err := ParseRing(e.Value)
	if err != nil {
		return nil, &CorruptError{Key: e.Key, Err: err}
	}
	return r, nil
}

// JWKSDoc returns the raw public JWKS document, for `key show --jwks`.
func (s *Store) JWKSDoc(ctx context.Context) ([]byte, error) {
	e, err := s.kv.KVGet(ctx, s.JWKSKey())
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, &NoRingError{Path: s.o.Path}
	}
	if _, err := ParseJWKS(e.Value); err != nil {
		return nil, &CorruptError{Key: e.Key, Err: err}
	}
	return e.Value, nil
}

// Result describes what a write did (or, with DryRun, would do). The JSON
// field names are part of `microctl key ... -o json`.
type Result struct {
	Op           string     `json:"op"`
	Path         string     `json:"path"`
	DryRun       bool       `json:"dry_run"`
	Changed      bool       `json:"changed"`
	Generation   int64      `json:"generation"`
	Current      string     `json:"current"`
	Next         string     `json:"next,omitempty"`
	Previous     string     `json:"previous,omitempty"` // the key this change made previous
	Added        []string   `json:"added"`
	Retired      []string   `json:"retired"`
	Revoked      []string   `json:"revoked"`
	Pruned       []string   `json:"pruned"`
	GraceSeconds int64      `json:"grace_seconds,omitempty"`
	RetireAfter  *time.Time `json:"retire_after,omitempty"`
	Legacy       string     `json:"legacy_path,omitempty"`
	AuditKey     string     `json:"audit_key,omitempty"`
	AuditPruned  int        `json:"audit_pruned,omitempty"` // old audit records deleted (--audit-keep)
	Warnings     []string   `json:"warnings,omitempty"`

	deferred int // private keys left for the next prune round
}

// maxValueSize is Consul's limit on one KV value (512 KB by default).
const maxValueSize = 512 * 1024

// auditOps is the room kept in every transaction for the audit record.
const auditOps = 1

// change is a planned write: the new ring and the private keys to create
// and delete.
type change struct {
	ring     *Ring
	created  []*material
	deleted  []string // private keys to delete, most important first
	deferred int      // deletions that did not fit in the transaction
	grace    time.Duration
	forced   bool
	res      Result
	// sealWith seals the private keys this change writes; rewrite also
	// re-writes every existing one under it (seal, rekey).
	sealWith *KEK
	rewrite  bool
}

func (c *change) noop() bool { return c == nil || c.ring == nil }

// auditRecord is the value at microctl/audit/<path>/<time>-<op>.
type auditRecord struct {
	Path string `json:"path"`
	auditFields
}

// planFunc computes a change from a snapshot taken under the lock. A nil
// change (or one without a ring) means there is nothing to write.
type planFunc func(snap *Snapshot, now time.Time) (*change, error)

// update runs one write the safe way: take the ring's session lock, read
// and check everything, plan, then write every value in ONE transaction
// that also checks the lock's session (fencing: a holder that lost its
// lock writes nothing) and the ModifyIndex of every value read, together
// with the audit record; then read it back and check it.
func (s *Store) update(ctx context.Context, op string, dryRun bool, plan planFunc) (*Result, error) {
	if dryRun {
		snap, err := s.Load(ctx)
		if err != nil {
			return nil, err
		}
		ch, err := plan(snap, s.now())
		if err != nil {
			return nil, err
		}
		if !ch.noop() {
			if err := s.sealPolicy(snap, ch, op); err != nil {
				return nil, err
			}
		}
		return s.finish(ch, op, true), nil
	}
	who := s.o.Actor
	var accessor string
	if st, err := s.kv.Token(ctx); err == nil {
		accessor = st.AccessorID
	}
	holder, _ := json.Marshal(Holder{Op: op, Who: who, Since: s.now()})
	lock, err := s.kv.AcquireLock(ctx, s.LockKey(), holder,
		registry.WithLockWait(s.o.LockWait), registry.WithLockName("microctl key "+op+" "+s.o.Path))
	if err != nil {
		var held *registry.LockHeldError
		if errors.As(err, &held) {
			return nil, &BusyError{LockKey: held.Key, Holder: parseHolder(held.Holder)}
		}
		var denied *registry.KVDeniedError
		var pe *registry.PermissionError
		if !errors.As(err, &denied) && errors.As(err, &pe) {
			return nil, &PolicyError{Path: s.o.Path, Err: err}
		}
		return nil, err
	}
	defer lock.Release(ctx)

	snap, err := s.Load(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	ch, err := plan(snap, now)
	if err != nil {
		return nil, err
	}
	if ch.noop() {
		return s.finish(ch, op, false), nil
	}
	if err := s.sealPolicy(snap, ch, op); err != nil {
		return nil, err
	}
	ch.ring.Generation++
	ch.ring.UpdatedAt = now
	ch.ring.UpdatedBy = who
	if err := ch.ring.Validate(); err != nil {
		return nil, fmt.Errorf("internal error: the planned ring is invalid: %w", err)
	}

	txn := &registry.Txn{}
	txn.CheckSession(s.LockKey(), lock.Session)
	if s.fence != nil {
		txn.CheckSession(s.fence.Key, s.fence.Session)
	}
	legacyValue, err := s.stage(txn, snap, ch, now)
	if err != nil {
		return nil, err
	}
	res := s.finish(ch, op, false)
	rec := auditRecord{Path: s.o.Path, auditFields: auditFields{Op: op, Who: who, TokenAccessor: accessor, At: now, Generation: ch.ring.Generation,
		Current: res.Current, Next: res.Next, Added: res.Added, Retired: res.Retired, Revoked: res.Revoked, Pruned: res.Pruned,
		GraceSeconds: res.GraceSeconds, Forced: ch.forced}}
	// Time first so a listing reads in order; the generation and a random
	// suffix keep two rings re-created in the same second apart.
	suffix := make([]byte, 3)
	_, _ = io.ReadFull(s.o.Rand, suffix)
	res.AuditKey = fmt.Sprintf("%s%s-%s-g%d-%x", s.AuditPrefix(), now.Format("20060102T150405Z"), op, ch.ring.Generation, suffix)
	b, _ := json.Marshal(rec)
	if res.AuditPruned, err = s.stageRetention(ctx, txn, now); err != nil {
		return nil, err
	}
	txn.CAS(res.AuditKey, b, 0)

	if s.beforeCommit != nil {
		s.beforeCommit(lock)
	}
	if err := s.kv.Commit(ctx, txn); err != nil {
		var conflict *registry.TxnConflictError
		if errors.As(err, &conflict) {
			return nil, &LostRaceError{Op: op, Err: err}
		}
		return nil, fmt.Errorf("write the ring at %s: %w", s.o.Path, err)
	}
	rb := s
	if ch.sealWith != nil && ch.sealWith != s.o.KEK {
		// rekey: the ring now opens with the new KEK only.
		c := *s
		c.o.KEK = ch.sealWith
		rb = &c
	}
	if err := rb.readBack(ctx, ch, legacyValue, now); err != nil {
		return nil, &ReadBackError{Path: s.o.Path, Err: err}
	}
	return res, nil
}

// stage adds the change's writes to txn: CAS on every value read, create-
// only for new private keys, delete-CAS for dropped ones.
func (s *Store) stage(txn *registry.Txn, snap *Snapshot, ch *change, now time.Time) ([]byte, error) {
	pubs := map[string]jwk.Key{}
	mats := map[string]*material{}
	for kid, p := range snap.private {
		pubs[kid], mats[kid] = p.mat.public, p.mat
	}
	// A key whose private half is missing keeps the public half the JWKS
	// already published, so tokens it signed still verify.
	for _, kid := range snap.Missing {
		if vk, ok := snap.JWKS.keys[kid]; ok {
			if pk, ok := vk.key.(jwk.Key); ok {
				pubs[kid] = pk
			}
		}
	}
	for _, m := range ch.created {
		pubs[m.kid], mats[m.kid] = m.public, m
	}
	j, err := buildJWKS(ch.ring, pubs, now)
	if err != nil {
		return nil, err
	}
	ringJSON, err := json.Marshal(ch.ring)
	if err != nil {
		return nil, err
	}
	jwksJSON, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	txn.CAS(s.RingKey(), ringJSON, snap.RingIndex)
	txn.CAS(s.JWKSKey(), jwksJSON, snap.JWKSIndex)
	for _, m := range ch.created {
		d, err := s.docFor(ch, m, now)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		txn.CAS(s.PrivateKey(m.kid), b, 0)
	}
	if ch.rewrite {
		// seal and rekey: every stored private key again, sealed under
		// ch.sealWith, each a check-and-set on the index read.
		kids := make([]string, 0, len(snap.private))
		for kid := range snap.private {
			kids = append(kids, kid)
		}
		slices.Sort(kids)
		for _, kid := range kids {
			p := snap.private[kid]
			d, err := s.docFor(ch, p.mat, p.doc.CreatedAt)
			if err != nil {
				return nil, err
			}
			b, err := json.Marshal(d)
			if err != nil {
				return nil, err
			}
			txn.CAS(s.PrivateKey(kid), b, p.index)
		}
	}
	var legacy []byte
	if ch.ring.LegacyPath != "" {
		cur := ch.ring.CurrentKey()
		m := mats[cur.Kid]
		if m == nil || m.alg != HS256 {
			return nil, &BrokenError{Path: s.o.Path, Kid: cur.Kid, Key: s.PrivateKey(cur.Kid)}
		}
		legacy = legacyValue(string(m.signer.([]byte)), ch.ring.Generation)
		var idx uint64
		if snap.Legacy != nil {
			idx = snap.Legacy.ModifyIndex
		}
		// Written only when the secret changes, and then with the new
		// generation beside it, so no write repeats an earlier value.
		if old, err := parseLegacy(valueOf(snap.Legacy)); snap.Legacy == nil || err != nil || old.Key != string(m.signer.([]byte)) {
			txn.CAS(ch.ring.LegacyPath, legacy, idx)
		} else {
			txn.CheckIndex(ch.ring.LegacyPath, idx)
			legacy = snap.Legacy.Value
		}
	}
	for _, b := range [][]byte{ringJSON, jwksJSON} {
		if len(b) > maxValueSize {
			return nil, fmt.Errorf("the ring would need a %d KB value, over Consul's %d KB: %d keys are verifiable; run microctl key prune, or rotate with a shorter --grace",
				len(b)/1024, maxValueSize/1024, len(ch.ring.Keys))
		}
	}
	// Private keys to delete go last, as many as the transaction has room
	// for, in the order planned (a revoked key first). The rest belong to
	// keys already out of the ring or retired, which nothing reads; prune
	// deletes them in later transactions.
	for _, kid := range ch.deleted {
		p, ok := snap.private[kid]
		if !ok {
			continue
		}
		if txn.Len()+1+auditOps > registry.MaxTxnOps {
			ch.deferred++
			continue
		}
		txn.DeleteCAS(s.PrivateKey(kid), p.index)
	}
	if txn.Len()+auditOps > registry.MaxTxnOps {
		return nil, fmt.Errorf("the change needs %d operations, over Consul's %d per transaction", txn.Len()+auditOps, registry.MaxTxnOps)
	}
	return legacy, nil
}

func valueOf(e *registry.KVEntry) []byte {
	if e == nil {
		return nil
	}
	return e.Value
}

// finish fills in the result from the planned ring.
func (s *Store) finish(ch *change, op string, dryRun bool) *Result {
	res := &Result{Op: op, Path: s.o.Path, DryRun: dryRun}
	if ch != nil {
		res = &ch.res
		res.Op, res.Path, res.DryRun = op, s.o.Path, dryRun
		res.Changed = !ch.noop() && !dryRun
		res.deferred = ch.deferred
		if ch.grace > 0 {
			res.GraceSeconds = int64(SecondsOf(ch.grace))
		}
		if ch.ring != nil {
			res.Generation = ch.ring.Generation
			if dryRun {
				res.Generation++
			}
			if k := ch.ring.CurrentKey(); k != nil {
				res.Current = k.Kid
			}
			if k := ch.ring.NextKey(); k != nil {
				res.Next = k.Kid
			}
			res.Legacy = ch.ring.LegacyPath
		}
	}
	for _, p := range []*[]string{&res.Added, &res.Retired, &res.Revoked, &res.Pruned} {
		if *p == nil {
			*p = []string{}
		}
	}
	return res
}

// readBack reads the ring again and checks that it is what was written:
// the generation, the keys and states, a JWKS that publishes exactly the
// verifiable keys, a private key for every key that needs one, the legacy
// secret, and every value under the prefix still a JSON object (Load).
func (s *Store) readBack(ctx context.Context, ch *change, legacy []byte, now time.Time) error {
	snap, err := s.Load(ctx)
	if err != nil {
		return err
	}
	if snap.Ring == nil {
		return errors.New("the ring is gone")
	}
	if snap.Ring.Generation != ch.ring.Generation {
		return fmt.Errorf("generation %d, wrote %d", snap.Ring.Generation, ch.ring.Generation)
	}
	want, got := ch.ring.CurrentKey().Kid, snap.Ring.CurrentKey().Kid
	if want != got {
		return fmt.Errorf("current key %s, wrote %s", got, want)
	}
	for _, k := range snap.Ring.Keys {
		inJWKS := snap.JWKS.Has(k.Kid)
		if wantIn := k.Verifiable(now) && !k.Alg.Symmetric(); inJWKS != wantIn {
			return fmt.Errorf("key %s (%s): in the JWKS = %v", k.Kid, k.State, inJWKS)
		}
	}
	if snap.JWKS.Current != want {
		return fmt.Errorf("the JWKS names %s as current, not %s", snap.JWKS.Current, want)
	}
	if legacy != nil && (snap.Legacy == nil || string(snap.Legacy.Value) != string(legacy)) {
		return fmt.Errorf("%s does not hold the current secret", snap.Ring.LegacyPath)
	}
	return nil
}
