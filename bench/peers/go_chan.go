// go_chan: Go peers for corio's channel and mutex micro benchmarks (bench/micro.cpp), in the
// output format of ../shared/bench/micro/go_micro.go. bench/run.sh builds it with `go build`
// and runs it pinned to one CPU (GOMAXPROCS=1) and to two (GOMAXPROCS=2).
//
//	chan_pingpong:    round trip over two unbuffered channels between two goroutines
//	chan_stream64:    one producer, one consumer, a channel buffered to 64; per value
//	chan_stream1024:  the same with a buffer of 1024
//	mutex_contention: 4 goroutines each Lock, increment, Unlock a sync.Mutex; per Lock/Unlock
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"
)

func chanPingPong(n int) {
	a, b := make(chan int), make(chan int)
	go func() {
		for v := range a {
			b <- v
		}
	}()
	for i := 0; i < n; i++ {
		a <- i
		<-b
	}
	close(a)
}

func chanStream(capacity int) func(int) {
	return func(n int) {
		c := make(chan int, capacity)
		done := make(chan struct{})
		go func() {
			for range c {
			}
			close(done)
		}()
		for i := 0; i < n; i++ {
			c <- i
		}
		close(c)
		<-done
	}
}

func mutexContention(n int) {
	const tasks = 4
	var m sync.Mutex
	var wg sync.WaitGroup
	counter := 0
	wg.Add(tasks)
	for g := 0; g < tasks; g++ {
		go func() {
			for i := 0; i < n/tasks; i++ {
				m.Lock()
				counter++
				m.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	if counter != n/tasks*tasks {
		fmt.Fprintln(os.Stderr, "mutex_contention: lost an update")
		os.Exit(1)
	}
}

func bench(name string, fn func(int), n int) {
	fn(n / 10) // warm-up
	r := make([]float64, 7)
	for k := range r {
		t0 := time.Now()
		fn(n)
		r[k] = float64(time.Since(t0).Nanoseconds()) / float64(n)
	}
	sort.Float64s(r)
	fmt.Printf("%-22s %8.1f ns/op  (min %.1f max %.1f)\n", name, r[3], r[0], r[6])
}

func main() {
	fmt.Printf("go %s GOMAXPROCS=%d\n", runtime.Version(), runtime.GOMAXPROCS(0))
	bench("chan_pingpong", chanPingPong, 1000000)
	bench("chan_stream64", chanStream(64), 5000000)
	bench("chan_stream1024", chanStream(1024), 5000000)
	bench("mutex_contention", mutexContention, 2000000)
}
