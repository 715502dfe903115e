// clientv3_check: etcd's own Go client (clientv3 of etcd 3.4, Debian's golang-etcd-server-dev)
// against a running three-node amaters cluster, checking what etcd's coordination recipes
// promise (docs/leases.md). Built and run by bench/clientv3_check.sh.
//
//	mutex     clientv3/concurrency.Mutex: -workers goroutines, each with its own session, take
//	          the lock -rounds times and increment a counter key inside it with a plain get and
//	          put; no two are ever inside at once, and the counter ends at workers*rounds.
//	election  clientv3/concurrency.Election: three candidates; each leader observed (Leader,
//	          Observe) is the only one whose Campaign returned and who has not resigned yet;
//	          each resigns after a while and every candidate leads once.
//	watch     a prefix watch from the first write's revision while -puts puts go on and the
//	          cluster leader is killed (SIGKILL, -pids) half way: the watcher gets every put
//	          exactly once, in revision order, with no gap, across the failover.
//
// Prints one line per check ("clientv3_check: CHECK ok ..." or "... FAIL ...") and a summary
// "clientv3_check: result=pass|fail"; exit status 0 only on pass.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
)

var (
	endpoints = flag.String("endpoints", "", "comma-separated client endpoints (host:port)")
	pids      = flag.String("pids", "", "member id:pid pairs (1:123,2:124,3:125) for the watch check's leader kill")
	workers   = flag.Int("workers", 4, "mutex contenders")
	rounds    = flag.Int("rounds", 25, "lock rounds per contender")
	puts      = flag.Int("puts", 200, "puts of the watch check")
	prefix    = flag.String("prefix", "/clientv3_check", "key prefix of this run")
)

func newClient() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   strings.Split(*endpoints, ","),
		DialTimeout: 5 * time.Second,
	})
}

func report(name string, err error, detail string) bool {
	if err != nil {
		fmt.Printf("clientv3_check: %s FAIL %v\n", name, err)
		return false
	}
	fmt.Printf("clientv3_check: %s ok %s\n", name, detail)
	return true
}

func checkMutex() error {
	var inside, violations int32
	counter := *prefix + "/mutex-counter"
	errs := make(chan error, *workers)
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cli, err := newClient()
			if err != nil {
				errs <- err
				return
			}
			defer cli.Close()
			s, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
			if err != nil {
				errs <- fmt.Errorf("worker %d session: %v", w, err)
				return
			}
			defer s.Close()
			m := concurrency.NewMutex(s, *prefix+"/mutex")
			for r := 0; r < *rounds; r++ {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				if err := m.Lock(ctx); err != nil {
					cancel()
					errs <- fmt.Errorf("worker %d lock: %v", w, err)
					return
				}
				if atomic.AddInt32(&inside, 1) != 1 {
					atomic.AddInt32(&violations, 1)
				}
				resp, err := cli.Get(ctx, counter)
				n := 0
				if err == nil && len(resp.Kvs) == 1 {
					n, err = strconv.Atoi(string(resp.Kvs[0].Value))
				}
				if err == nil {
					_, err = cli.Put(ctx, counter, strconv.Itoa(n+1))
				}
				atomic.AddInt32(&inside, -1)
				if uerr := m.Unlock(ctx); err == nil {
					err = uerr
				}
				cancel()
				if err != nil {
					errs <- fmt.Errorf("worker %d round %d: %v", w, r, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	if violations != 0 {
		return fmt.Errorf("%d times two contenders held the mutex at once", violations)
	}
	cli, err := newClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	resp, err := cli.Get(context.Background(), counter)
	if err != nil {
		return err
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != strconv.Itoa(*workers**rounds) {
		return fmt.Errorf("counter is %v, want %d (a lost update)", resp.Kvs, *workers**rounds)
	}
	return nil
}

func checkElection() error {
	const candidates = 3
	var mu sync.Mutex
	leading := map[int]bool{} // candidates whose Campaign returned and who have not resigned
	led := 0
	errs := make(chan error, candidates)
	var wg sync.WaitGroup
	for c := 0; c < candidates; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			cli, err := newClient()
			if err != nil {
				errs <- err
				return
			}
			defer cli.Close()
			s, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			e := concurrency.NewElection(s, *prefix+"/election")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := e.Campaign(ctx, fmt.Sprintf("candidate-%d", c)); err != nil {
				errs <- fmt.Errorf("candidate %d campaign: %v", c, err)
				return
			}
			mu.Lock()
			if len(leading) != 0 {
				mu.Unlock()
				errs <- fmt.Errorf("candidate %d leads while %v still lead", c, leading)
				return
			}
			leading[c] = true
			led++
			mu.Unlock()
			// Everyone sees this candidate as the leader while it leads.
			resp, err := e.Leader(ctx)
			if err == nil && string(resp.Kvs[0].Value) != fmt.Sprintf("candidate-%d", c) {
				err = fmt.Errorf("Leader() is %q while candidate %d leads", resp.Kvs[0].Value, c)
			}
			time.Sleep(300 * time.Millisecond)
			mu.Lock()
			delete(leading, c)
			mu.Unlock()
			if rerr := e.Resign(ctx); err == nil {
				err = rerr
			}
			if err != nil {
				errs <- err
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	if led != candidates {
		return fmt.Errorf("%d of %d candidates led", led, candidates)
	}
	return nil
}

// killLeader SIGKILLs the member that leads, by its id in Maintenance.Status.
func killLeader(cli *clientv3.Client) (string, error) {
	byID := map[uint64]int{}
	for _, pair := range strings.Split(*pids, ",") {
		parts := strings.SplitN(pair, ":", 2)
		if len(parts) != 2 {
			return "", fmt.Errorf("bad -pids entry %q", pair)
		}
		id, err1 := strconv.ParseUint(parts[0], 10, 64)
		pid, err2 := strconv.Atoi(parts[1])
		if err1 != nil || err2 != nil {
			return "", fmt.Errorf("bad -pids entry %q", pair)
		}
		byID[id] = pid
	}
	for _, ep := range cli.Endpoints() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := cli.Status(ctx, ep)
		cancel()
		if err != nil || st.Leader == 0 {
			continue
		}
		pid, ok := byID[st.Leader]
		if !ok {
			return "", fmt.Errorf("leader %d has no pid in -pids", st.Leader)
		}
		return fmt.Sprintf("killed leader %d (pid %d)", st.Leader, pid), syscall.Kill(pid, syscall.SIGKILL)
	}
	return "", fmt.Errorf("no member reports a leader")
}

func checkWatch() (string, error) {
	cli, err := newClient()
	if err != nil {
		return "", err
	}
	defer cli.Close()
	dir := *prefix + "/watch/"
	first, err := cli.Put(context.Background(), dir+"start", "0")
	if err != nil {
		return "", err
	}
	start := first.Header.Revision
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	events := cli.Watch(clientv3.WithRequireLeader(wctx), dir, clientv3.WithPrefix(), clientv3.WithRev(start))
	got := make(chan []*clientv3.Event, 1024)
	go func() {
		for resp := range events {
			if resp.Canceled {
				close(got)
				return
			}
			if len(resp.Events) > 0 {
				got <- resp.Events
			}
		}
		close(got)
	}()
	killed := ""
	for i := 0; i < *puts; i++ {
		if i == *puts/2 && *pids != "" {
			if killed, err = killLeader(cli); err != nil {
				return "", err
			}
		}
		key := fmt.Sprintf("%sk%04d", dir, i)
		for attempt := 0; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = cli.Put(ctx, key, strconv.Itoa(i))
			cancel()
			if err == nil {
				break
			}
			if attempt == 20 {
				return "", fmt.Errorf("put %s: %v", key, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	// The committed history of the prefix from `start`, as the store has it now.
	last, err := cli.Get(context.Background(), dir, clientv3.WithPrefix())
	if err != nil {
		return "", err
	}
	want := last.Header.Revision
	var seen []*clientv3.Event
	deadline := time.After(30 * time.Second)
	for len(seen) == 0 || seen[len(seen)-1].Kv.ModRevision < want {
		select {
		case evs, ok := <-got:
			if !ok {
				return "", fmt.Errorf("the watch ended after %d events", len(seen))
			}
			seen = append(seen, evs...)
		case <-deadline:
			return "", fmt.Errorf("%d events after 30 s, the last at revision %d of %d", len(seen), seen[len(seen)-1].Kv.ModRevision, want)
		}
	}
	// In revision order, once each, and the puts of every key (a retried put may add one).
	prev := int64(0)
	perKey := map[string]int64{}
	for _, ev := range seen {
		if ev.Kv.ModRevision <= prev {
			return "", fmt.Errorf("event at revision %d after %d (out of order or repeated)", ev.Kv.ModRevision, prev)
		}
		prev = ev.Kv.ModRevision
		perKey[string(ev.Kv.Key)] = ev.Kv.ModRevision
	}
	for _, kv := range last.Kvs {
		if perKey[string(kv.Key)] != kv.ModRevision {
			return "", fmt.Errorf("no event for %s at its revision %d (a gap)", kv.Key, kv.ModRevision)
		}
	}
	if len(last.Kvs) != *puts+1 {
		return "", fmt.Errorf("%d keys under %s, want %d", len(last.Kvs), dir, *puts+1)
	}
	// No gap inside: every revision from start to want belongs to this prefix (nothing else
	// writes during the check), so the events are exactly start..want.
	if int64(len(seen)) != want-start+1 {
		return "", fmt.Errorf("%d events for revisions %d..%d (a gap or a duplicate)", len(seen), start, want)
	}
	return fmt.Sprintf("%d events, revisions %d..%d, %s", len(seen), start, want, killed), nil
}

func main() {
	flag.Parse()
	if *endpoints == "" {
		fmt.Fprintln(os.Stderr, "clientv3_check: -endpoints is required")
		os.Exit(2)
	}
	ok := report("mutex", checkMutex(), fmt.Sprintf("%d contenders x %d rounds, counter %d", *workers, *rounds, *workers**rounds))
	ok = report("election", checkElection(), "3 candidates, one leader at a time, each led once") && ok
	detail, err := checkWatch()
	ok = report("watch", err, detail) && ok
	if ok {
		fmt.Println("clientv3_check: result=pass")
		return
	}
	fmt.Println("clientv3_check: result=fail")
	os.Exit(1)
}
