//! Dependency order of nodes, and the cycles that prevent one.
use std::collections::{BTreeMap, BTreeSet};

/// Orders `ids` so each comes after everything in its `deps` (edges to unknown ids are
/// ignored: they are reported elsewhere). Ties keep declaration order. On a cycle,
/// returns every distinct cycle found, each as a path `a -> b -> a`.
pub fn topo_order(ids: &[String], deps: &BTreeMap<String, BTreeSet<String>>) -> Result<Vec<String>, Vec<Vec<String>>> {
    let known: BTreeSet<&String> = ids.iter().collect();
    let edges = |id: &String| -> Vec<&String> {
        deps.get(id).map(|d| d.iter().filter(|x| known.contains(x)).collect()).unwrap_or_default()
    };
    // Kahn's algorithm, always taking the ready node declared first: the same order as
    // repeatedly scanning for the first placeable node, in O((nodes + edges) log nodes).
    let index: std::collections::HashMap<&String, usize> =
        ids.iter().enumerate().rev().map(|(i, id)| (id, i)).collect();
    let mut waiting: Vec<usize> = vec![0; ids.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); ids.len()];
    for (i, id) in ids.iter().enumerate() {
        if index.get(id) != Some(&i) {
            continue; // a duplicate id: reported elsewhere
        }
        for d in edges(id) {
            if let Some(&j) = index.get(d) {
                waiting[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut ready: BTreeSet<usize> =
        (0..ids.len()).filter(|&i| index.get(&ids[i]) == Some(&i) && waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(ids.len());
    let mut placed: BTreeSet<&String> = BTreeSet::new();
    while let Some(i) = ready.pop_first() {
        placed.insert(&ids[i]);
        order.push(ids[i].clone());
        for &k in &dependents[i] {
            waiting[k] -= 1;
            if waiting[k] == 0 {
                ready.insert(k);
            }
        }
    }
    let distinct = index.len();
    if order.len() == distinct && distinct == ids.len() {
        return Ok(order);
    }
    // Find cycles among the unplaced nodes with a DFS from each of them.
    let mut cycles: Vec<Vec<String>> = Vec::new();
    let mut seen_sets: BTreeSet<BTreeSet<String>> = BTreeSet::new();
    for start in ids.iter().filter(|id| !placed.contains(id)) {
        let mut path: Vec<&String> = vec![start];
        if let Some(cycle) = dfs(start, &mut path, &edges, &placed) {
            let key: BTreeSet<String> = cycle.iter().cloned().collect();
            if seen_sets.insert(key) {
                cycles.push(cycle);
            }
        }
    }
    Err(cycles)
}

fn dfs<'a>(
    at: &'a String,
    path: &mut Vec<&'a String>,
    edges: &dyn Fn(&String) -> Vec<&'a String>,
    placed: &BTreeSet<&String>,
) -> Option<Vec<String>> {
    for next in edges(at) {
        if placed.contains(next) {
            continue;
        }
        if let Some(pos) = path.iter().position(|p| *p == next) {
            let mut cycle: Vec<String> = path[pos..].iter().map(|s| (*s).clone()).collect();
            cycle.push(next.clone());
            return Some(cycle);
        }
        path.push(next);
        if let Some(c) = dfs(next, path, edges, placed) {
            return Some(c);
        }
        path.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(pairs: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect()
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn orders_a_diamond() {
        let order = topo_order(&ids(&["d", "b", "c", "a"]), &deps(&[("d", &["b", "c"]), ("b", &["a"]), ("c", &["a"])]))
            .unwrap();
        assert_eq!(order, ids(&["a", "b", "c", "d"]));
    }

    #[test]
    fn names_cycles() {
        let cycles = topo_order(
            &ids(&["a", "b", "c", "x"]),
            &deps(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("x", &["x"])]),
        )
        .unwrap_err();
        assert_eq!(cycles, vec![ids(&["a", "b", "c", "a"]), ids(&["x", "x"])]);
    }
}
