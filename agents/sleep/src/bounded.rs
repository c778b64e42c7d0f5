//! A map that forgets its oldest entries beyond a fixed size, so remembering handles
//! for idempotency never grows without bound in a long-running gateway.
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

#[derive(Debug)]
pub struct BoundedMap<K, V> {
    capacity: usize,
    entries: HashMap<K, V>,
    /// Insertion order, oldest first.
    order: VecDeque<K>,
}

impl<K: Eq + Hash + Clone, V: Clone> BoundedMap<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), entries: HashMap::new(), order: VecDeque::new() }
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// The value stored under `key`, inserting `value` first if there is none.
    pub fn get_or_insert(&mut self, key: K, value: V) -> V {
        if let Some(existing) = self.entries.get(&key) {
            return existing.clone();
        }
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
        self.order.push_back(key.clone());
        self.entries.insert(key, value.clone());
        value
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_value_and_forgets_the_oldest() {
        let mut m = BoundedMap::new(2);
        assert_eq!(m.get_or_insert("a", 1), 1);
        assert_eq!(m.get_or_insert("a", 9), 1, "the first value wins");
        m.get_or_insert("b", 2);
        m.get_or_insert("c", 3);
        assert_eq!(m.len(), 2);
        assert!(!m.contains(&"a"));
        assert_eq!(m.get(&"b"), Some(&2));
        assert_eq!(m.get(&"c"), Some(&3));
    }
}
