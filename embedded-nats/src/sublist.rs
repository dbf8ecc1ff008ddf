//! Subject index: a token tree with `*`/`>` wildcards, plus a small cache of match results.

use crate::Map;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::Error;
use crate::stats::{SublistCounters, SublistStats};
use crate::subscription::Subscription;

/// Largest number of cached match results.
const CACHE_MAX: usize = 4096;

/// Locks a mutex, ignoring poisoning (no code path panics while holding one, but a panicking
/// user handler elsewhere must never wedge the server).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// True for a valid subscription subject: non-empty tokens separated by `.`, no whitespace,
/// `*` and `>` only as whole tokens and `>` only last.
pub(crate) fn is_valid_sub_subject(subject: &str) -> bool {
    if subject.is_empty() {
        return false;
    }
    let mut tokens = subject.split('.').peekable();
    while let Some(tok) = tokens.next() {
        if tok.is_empty() || tok.bytes().any(is_space) {
            return false;
        }
        if tok == ">" && tokens.peek().is_some() {
            return false;
        }
    }
    true
}

/// True for a valid publish subject: a valid subject without wildcard tokens.
pub(crate) fn is_valid_pub_subject(subject: &str) -> bool {
    is_valid_sub_subject(subject) && subject.split('.').all(|t| t != "*" && t != ">")
}

/// True for a valid queue group name.
pub(crate) fn is_valid_queue(queue: &str) -> bool {
    !queue.is_empty() && !queue.bytes().any(is_space)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// True when the (possibly wildcard) `pattern` matches the literal `subject`.
///
/// ```
/// assert!(stan_embedded_nats::subject_matches("orders.>", "orders.eu.1"));
/// assert!(!stan_embedded_nats::subject_matches("orders.*", "orders.eu.1"));
/// ```
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut pt = pattern.split('.');
    let mut st = subject.split('.');
    loop {
        match (pt.next(), st.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(s)) if p == s => {}
            _ => return false,
        }
    }
}

/// Subscriptions matching a subject.
#[derive(Default)]
pub(crate) struct MatchResult {
    /// Plain subscriptions: each gets a copy.
    pub psubs: Vec<Arc<Subscription>>,
    /// Queue groups (by name): one member of each gets it.
    pub qsubs: Vec<(Box<str>, Vec<Arc<Subscription>>)>,
}

impl MatchResult {
    /// True when nothing matches.
    pub(crate) fn is_empty(&self) -> bool {
        self.psubs.is_empty() && self.qsubs.is_empty()
    }

    fn add_node(&mut self, node: &Node) {
        self.psubs.extend(node.psubs.iter().cloned());
        for (name, members) in &node.qsubs {
            match self.qsubs.iter_mut().find(|(n, _)| n == name) {
                Some((_, group)) => group.extend(members.iter().cloned()),
                None => self.qsubs.push((name.clone(), members.clone())),
            }
        }
    }
}

#[derive(Default)]
struct Level {
    literal: Map<Box<str>, Node>,
    pwc: Option<Box<Node>>,
    fwc: Option<Box<Node>>,
}

impl Level {
    fn is_empty(&self) -> bool {
        self.literal.is_empty() && self.pwc.is_none() && self.fwc.is_none()
    }

    fn collect(&self, tokens: &[&str], out: &mut MatchResult) {
        let Some((tok, rest)) = tokens.split_first() else {
            return;
        };
        if let Some(fwc) = &self.fwc {
            out.add_node(fwc);
        }
        if let Some(pwc) = &self.pwc {
            pwc.collect(rest, out);
        }
        if let Some(node) = self.literal.get(*tok) {
            node.collect(rest, out);
        }
    }

    fn node_mut(&mut self, tok: &str) -> &mut Node {
        match tok {
            "*" => self.pwc.get_or_insert_with(Default::default),
            ">" => self.fwc.get_or_insert_with(Default::default),
            _ => self.literal.entry(tok.into()).or_default(),
        }
    }

    /// Removes `sub` below this level; returns true if found.
    fn remove(&mut self, tokens: &[&str], sub: &Subscription) -> bool {
        let Some((tok, rest)) = tokens.split_first() else {
            return false;
        };
        let (found, empty) = match *tok {
            "*" => remove_in(self.pwc.as_deref_mut(), rest, sub),
            ">" => remove_in(self.fwc.as_deref_mut(), rest, sub),
            t => remove_in(self.literal.get_mut(t), rest, sub),
        };
        if empty {
            match *tok {
                "*" => self.pwc = None,
                ">" => self.fwc = None,
                t => {
                    self.literal.remove(t);
                }
            }
        }
        found
    }
}

/// Removes `sub` from `node` (or below it); returns (found, node now empty).
fn remove_in(node: Option<&mut Node>, rest: &[&str], sub: &Subscription) -> (bool, bool) {
    let Some(node) = node else {
        return (false, false);
    };
    let found = if rest.is_empty() {
        node.remove_here(sub)
    } else {
        node.next.remove(rest, sub)
    };
    (found, node.is_empty())
}

#[derive(Default)]
struct Node {
    next: Level,
    psubs: Vec<Arc<Subscription>>,
    qsubs: Vec<(Box<str>, Vec<Arc<Subscription>>)>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.psubs.is_empty() && self.qsubs.is_empty() && self.next.is_empty()
    }

    fn collect(&self, rest: &[&str], out: &mut MatchResult) {
        if rest.is_empty() {
            out.add_node(self);
        } else {
            self.next.collect(rest, out);
        }
    }

    fn remove_here(&mut self, sub: &Subscription) -> bool {
        match &sub.queue {
            None => {
                let before = self.psubs.len();
                self.psubs.retain(|s| s.id != sub.id);
                self.psubs.len() != before
            }
            Some(q) => {
                let Some(idx) = self.qsubs.iter().position(|(n, _)| n == q) else {
                    return false;
                };
                let group = &mut self.qsubs[idx].1;
                let before = group.len();
                group.retain(|s| s.id != sub.id);
                let found = group.len() != before;
                if group.is_empty() {
                    self.qsubs.swap_remove(idx);
                }
                found
            }
        }
    }
}

#[derive(Default)]
struct Tree {
    root: Level,
    count: usize,
    closed: bool,
}

/// The subject index shared by all connections.
#[derive(Default)]
pub(crate) struct Sublist {
    tree: RwLock<Tree>,
    genid: AtomicU64,
    cache: Mutex<Map<Box<str>, Arc<MatchResult>>>,
    counters: SublistCounters,
}

impl Sublist {
    /// Adds a subscription. When this returns, every later match sees it.
    pub(crate) fn insert(&self, sub: Arc<Subscription>) -> Result<(), Error> {
        let subject = sub.subject.clone();
        {
            let mut tree = write(&self.tree);
            if tree.closed {
                return Err(Error::ShutDown);
            }
            let mut level = &mut tree.root;
            let mut tokens = subject.split('.').peekable();
            let node = loop {
                let Some(tok) = tokens.next() else {
                    return Err(Error::InvalidSubject(subject.to_string()));
                };
                let node = level.node_mut(tok);
                if tokens.peek().is_none() {
                    break node;
                }
                level = &mut node.next;
            };
            match &sub.queue {
                None => node.psubs.push(sub),
                Some(q) => match node.qsubs.iter_mut().find(|(n, _)| n == q) {
                    Some((_, group)) => group.push(sub),
                    None => node.qsubs.push((q.clone(), vec![sub])),
                },
            }
            tree.count += 1;
            self.genid.fetch_add(1, Ordering::AcqRel);
            SublistCounters::bump(&self.counters.inserts);
        }
        self.purge_cache(&subject);
        Ok(())
    }

    /// Removes a subscription; returns true if it was present.
    pub(crate) fn remove(&self, sub: &Subscription) -> bool {
        let found = {
            let mut tree = write(&self.tree);
            let tokens: Vec<&str> = sub.subject.split('.').collect();
            let found = tree.root.remove(&tokens, sub);
            if found {
                tree.count -= 1;
                self.genid.fetch_add(1, Ordering::AcqRel);
                SublistCounters::bump(&self.counters.removes);
            }
            found
        };
        if found {
            self.purge_cache(&sub.subject);
        }
        found
    }

    /// Subscriptions matching the literal `subject`.
    pub(crate) fn matches(&self, subject: &str) -> Arc<MatchResult> {
        SublistCounters::bump(&self.counters.matches);
        if let Some(hit) = lock(&self.cache).get(subject) {
            SublistCounters::bump(&self.counters.cache_hits);
            return hit.clone();
        }
        let (result, gen) = {
            let tree = read(&self.tree);
            let gen = self.genid.load(Ordering::Acquire);
            let mut result = MatchResult::default();
            if !subject.is_empty() {
                let tokens: Vec<&str> = subject.split('.').collect();
                tree.root.collect(&tokens, &mut result);
            }
            (Arc::new(result), gen)
        };
        let mut cache = lock(&self.cache);
        if self.genid.load(Ordering::Acquire) == gen {
            if cache.len() >= CACHE_MAX {
                let mut n = 0;
                cache.retain(|_, _| {
                    n += 1;
                    n % 2 == 0
                });
            }
            cache.insert(subject.into(), result.clone());
        }
        result
    }

    /// Number of subscriptions.
    pub(crate) fn count(&self) -> usize {
        read(&self.tree).count
    }

    /// Statistics of the index and its cache.
    pub(crate) fn stats(&self) -> SublistStats {
        let count = self.count();
        let cache = lock(&self.cache);
        self.counters
            .snapshot(count, cache.values().map(|r| r.psubs.len() + r.qsubs.len()))
    }

    /// Every registered subscription (a copy of the index's list).
    pub(crate) fn all(&self) -> Vec<Arc<Subscription>> {
        let tree = read(&self.tree);
        let mut out = Vec::with_capacity(tree.count);
        collect_level(&tree.root, &mut out);
        out
    }

    /// Removes everything and refuses later inserts; returns what was removed.
    pub(crate) fn close(&self) -> Vec<Arc<Subscription>> {
        let root = {
            let mut tree = write(&self.tree);
            tree.closed = true;
            tree.count = 0;
            self.genid.fetch_add(1, Ordering::AcqRel);
            std::mem::take(&mut tree.root)
        };
        lock(&self.cache).clear();
        let mut all = Vec::new();
        drain_level(root, &mut all);
        for s in &all {
            s.close();
        }
        all
    }

    fn purge_cache(&self, pattern: &str) {
        let mut cache = lock(&self.cache);
        if cache.is_empty() {
            return;
        }
        let literal = !pattern.split('.').any(|t| t == "*" || t == ">");
        if literal {
            cache.remove(pattern);
        } else {
            cache.retain(|subject, _| !subject_matches(pattern, subject));
        }
    }
}

fn collect_level(level: &Level, out: &mut Vec<Arc<Subscription>>) {
    let nodes = level
        .literal
        .values()
        .chain(level.pwc.as_deref())
        .chain(level.fwc.as_deref());
    for node in nodes {
        out.extend(node.psubs.iter().cloned());
        for (_, group) in &node.qsubs {
            out.extend(group.iter().cloned());
        }
        collect_level(&node.next, out);
    }
}

fn drain_level(level: Level, out: &mut Vec<Arc<Subscription>>) {
    let nodes = level
        .literal
        .into_values()
        .chain(level.pwc.map(|b| *b))
        .chain(level.fwc.map(|b| *b));
    for node in nodes {
        out.extend(node.psubs);
        for (_, group) in node.qsubs {
            out.extend(group);
        }
        drain_level(node.next, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscription::Target;
    use tokio::sync::mpsc;

    fn sub(id: u64, subject: &str, queue: Option<&str>) -> Arc<Subscription> {
        let (tx, _rx) = mpsc::unbounded_channel();
        Arc::new(Subscription::new(
            id,
            1,
            subject,
            queue,
            Target::Channel(tx),
        ))
    }

    fn ids(r: &MatchResult) -> Vec<u64> {
        let mut v: Vec<u64> = r.psubs.iter().map(|s| s.id).collect();
        for (_, g) in &r.qsubs {
            v.extend(g.iter().map(|s| s.id));
        }
        v.sort();
        v
    }

    #[test]
    fn validity() {
        assert!(is_valid_sub_subject("foo"));
        assert!(is_valid_sub_subject("foo.*.bar"));
        assert!(is_valid_sub_subject("foo.>"));
        assert!(is_valid_sub_subject(">"));
        assert!(is_valid_sub_subject("foo*.bar"));
        assert!(!is_valid_sub_subject(""));
        assert!(!is_valid_sub_subject("foo..bar"));
        assert!(!is_valid_sub_subject(".foo"));
        assert!(!is_valid_sub_subject("foo."));
        assert!(!is_valid_sub_subject("foo.>.bar"));
        assert!(!is_valid_sub_subject("foo bar"));
        assert!(is_valid_pub_subject("foo.bar"));
        assert!(!is_valid_pub_subject("foo.*"));
        assert!(!is_valid_pub_subject("foo.>"));
        assert!(!is_valid_queue(""));
        assert!(is_valid_queue("q1"));
    }

    #[test]
    fn pattern_matching() {
        assert!(subject_matches("foo.*", "foo.bar"));
        assert!(!subject_matches("foo.*", "foo.bar.baz"));
        assert!(!subject_matches("foo.*", "foo"));
        assert!(subject_matches("foo.>", "foo.bar.baz"));
        assert!(!subject_matches("foo.>", "foo"));
        assert!(subject_matches(">", "a"));
        assert!(subject_matches("a.b", "a.b"));
        assert!(!subject_matches("a.b", "a.c"));
        assert!(!subject_matches("a.b", "a.b.c"));
    }

    #[test]
    fn insert_match_remove() {
        let sl = Sublist::default();
        let subs = [
            sub(1, "foo.bar", None),
            sub(2, "foo.*", None),
            sub(3, "foo.>", None),
            sub(4, ">", None),
            sub(5, "*.bar", Some("q")),
            sub(6, "foo.bar", Some("q")),
            sub(7, "foo.baz", None),
        ];
        for s in &subs {
            sl.insert(s.clone()).unwrap();
        }
        assert_eq!(sl.count(), 7);
        let r = sl.matches("foo.bar");
        assert_eq!(ids(&r), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(r.qsubs.len(), 1, "same queue name merges into one group");
        assert_eq!(ids(&sl.matches("foo.bar.baz")), vec![3, 4]);
        assert_eq!(ids(&sl.matches("foo")), vec![4]);
        assert_eq!(ids(&sl.matches("bar")), vec![4]);
        assert!(sl.matches("").is_empty());
        // Cached result is invalidated by removal.
        assert!(sl.remove(&subs[1]));
        assert!(!sl.remove(&subs[1]));
        assert_eq!(ids(&sl.matches("foo.bar")), vec![1, 3, 4, 5, 6]);
        assert!(sl.remove(&subs[3]));
        assert!(sl.remove(&subs[4]));
        assert_eq!(ids(&sl.matches("foo")), Vec::<u64>::new());
        // Cached result is invalidated by insertion.
        let s8 = sub(8, "foo", None);
        sl.insert(s8).unwrap();
        assert_eq!(ids(&sl.matches("foo")), vec![8]);
        let all = sl.close();
        assert_eq!(all.len(), 5);
        assert!(sl.matches("foo.bar").is_empty());
        assert_eq!(sl.insert(sub(9, "x", None)), Err(Error::ShutDown));
    }

    #[test]
    fn stats_count_inserts_removes_matches_and_hits() {
        let sl = Sublist::default();
        let a = sub(1, "a.b", None);
        sl.insert(a.clone()).unwrap();
        sl.insert(sub(2, "a.*", None)).unwrap();
        sl.insert(sub(3, "a.>", Some("q"))).unwrap();
        sl.insert(sub(4, "a.>", Some("q"))).unwrap();
        assert_eq!(sl.matches("a.b").psubs.len(), 2);
        assert_eq!(
            sl.matches("a.b").psubs.len(),
            2,
            "second look-up hits the cache"
        );
        assert!(sl.matches("zzz").is_empty());
        let s = sl.stats();
        assert_eq!(s.num_subscriptions, 4);
        assert_eq!(s.num_inserts, 4);
        assert_eq!(s.num_removes, 0);
        assert_eq!(s.num_matches, 3);
        assert!((s.cache_hit_rate - 1.0 / 3.0).abs() < 1e-9, "{s:?}");
        assert_eq!(s.num_cache, 2);
        // "a.b": two plain subscriptions and one queue group; "zzz": nothing.
        assert_eq!(s.max_fanout, 3);
        assert!((s.avg_fanout - 1.5).abs() < 1e-9, "{s:?}");
        let mut all: Vec<u64> = sl.all().iter().map(|s| s.id).collect();
        all.sort();
        assert_eq!(all, vec![1, 2, 3, 4]);
        assert!(sl.remove(&a));
        let s = sl.stats();
        assert_eq!((s.num_subscriptions, s.num_removes), (3, 1));
        assert_eq!(s.num_cache, 1, "the removal purged the cached a.b result");
    }

    #[test]
    fn removal_prunes_tree() {
        let sl = Sublist::default();
        let a = sub(1, "a.b.c", None);
        sl.insert(a.clone()).unwrap();
        sl.remove(&a);
        assert!(read(&sl.tree).root.is_empty());
        assert_eq!(sl.count(), 0);
    }

    #[test]
    fn cache_stays_bounded() {
        let sl = Sublist::default();
        sl.insert(sub(1, ">", None)).unwrap();
        for i in 0..(CACHE_MAX * 2) {
            assert_eq!(sl.matches(&format!("s.{i}")).psubs.len(), 1);
        }
        assert!(lock(&sl.cache).len() <= CACHE_MAX);
    }
}
