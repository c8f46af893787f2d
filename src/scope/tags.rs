//! [`Tags`]: a scope's tags, sorted by key — a request's few in one vector (which a pooled
//! request scope keeps, so its tags cost no allocation), many in a B-tree.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// A tag's key or value: a `&'static str` is kept as is (no copy).
type Text = Cow<'static, str>;

/// Up to this many tags live in a sorted vector; one more moves them into a B-tree, so a scope
/// given thousands of tags still inserts in O(log n).
const SMALL: usize = 32;

/// The tags of a [`Scope`](crate::Scope), sorted by key: read with [`get`](Self::get),
/// [`iter`](Self::iter) or a `for` loop, written through the scope
/// ([`Scope::set_tag`](crate::Scope::set_tag)).
///
/// ```
/// let mut scope = isoscope::Scope::default();
/// scope.set_tag("region", "eu");
/// scope.set_tag("app", "shop");
/// let tags = scope.tags();
/// assert_eq!(tags.get("region"), Some("eu"));
/// assert_eq!(tags.iter().map(|(k, _)| &**k).collect::<Vec<_>>(), ["app", "region"]);
/// assert_eq!(tags.len(), 2);
/// ```
#[derive(Clone, Default)]
pub struct Tags {
    repr: Repr,
}

/// Equal when they hold the same tags, however they are stored.
impl PartialEq for Tags {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Tags {}

#[derive(Clone)]
enum Repr {
    /// Sorted by key, keys unique.
    Few(Vec<(Text, Text)>),
    Many(BTreeMap<Text, Text>),
}

/// Where `key` is in a sorted vector of tags (`Err`: where it would go).
fn position(few: &[(Text, Text)], key: &str) -> Result<usize, usize> {
    few.binary_search_by(|(k, _)| (**k).cmp(key))
}

impl Default for Repr {
    fn default() -> Self {
        Self::Few(Vec::new())
    }
}

impl Tags {
    /// No tags (allocates nothing).
    pub const fn new() -> Self {
        Self { repr: Repr::Few(Vec::new()) }
    }

    /// The value of the tag `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        match &self.repr {
            Repr::Few(v) => position(v, key).ok().map(|i| &*v[i].1),
            Repr::Many(m) => m.get(key).map(|v| &**v),
        }
    }

    /// Whether the tag `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// How many tags are set.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Few(v) => v.len(),
            Repr::Many(m) => m.len(),
        }
    }

    /// Whether no tag is set.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tags, sorted by key.
    pub fn iter(&self) -> Iter<'_> {
        Iter(match &self.repr {
            Repr::Few(v) => IterRepr::Few(v.iter()),
            Repr::Many(m) => IterRepr::Many(m.iter()),
        })
    }

    /// The tags as a `BTreeMap` (a copy of the keys and values, or of pointers to the literal
    /// ones): what `Tags` was before it became a type of its own, for code that used its map
    /// methods.
    ///
    /// ```
    /// let mut scope = isoscope::Scope::default();
    /// scope.set_tag("region", "eu");
    /// let map = scope.tags().to_btree_map();
    /// assert_eq!(map.get("region").map(|v| &**v), Some("eu"));
    /// ```
    pub fn to_btree_map(&self) -> BTreeMap<Cow<'static, str>, Cow<'static, str>> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Sets `key` to `value`.
    pub(crate) fn insert(&mut self, key: Text, value: Text) {
        match &mut self.repr {
            Repr::Few(v) => match position(v, &key) {
                Ok(i) => v[i].1 = value,
                Err(i) if v.len() < SMALL => v.insert(i, (key, value)),
                Err(_) => self.grow(key, value),
            },
            Repr::Many(m) => {
                m.insert(key, value);
            }
        }
    }

    /// The tag past [`SMALL`]: every tag moves into a B-tree. Out of line (rare).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, key: Text, value: Text) {
        let Repr::Few(v) = std::mem::take(&mut self.repr) else { return };
        let mut map: BTreeMap<Text, Text> = v.into_iter().collect();
        map.insert(key, value);
        self.repr = Repr::Many(map);
    }

    /// Removes `key`.
    pub(crate) fn remove(&mut self, key: &str) {
        match &mut self.repr {
            Repr::Few(v) => {
                if let Ok(i) = position(v, key) {
                    v.remove(i);
                }
            }
            Repr::Many(m) => {
                m.remove(key);
            }
        }
    }

    /// Removes every tag, keeping a small vector's buffer (a pooled request scope's next tags
    /// then allocate nothing). `false` if there was nothing worth keeping.
    pub(crate) fn clear_keeping_buffer(&mut self) -> bool {
        match &mut self.repr {
            Repr::Few(v) if v.capacity() > 0 => {
                v.clear();
                true
            }
            _ => false,
        }
    }
}

impl fmt::Debug for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// An iterator over [`Tags`], sorted by key.
#[derive(Debug, Clone)]
pub struct Iter<'a>(IterRepr<'a>);

#[derive(Debug, Clone)]
enum IterRepr<'a> {
    Few(std::slice::Iter<'a, (Text, Text)>),
    Many(std::collections::btree_map::Iter<'a, Text, Text>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Cow<'static, str>, &'a Cow<'static, str>);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Few(it) => it.next().map(|(k, v)| (k, v)),
            IterRepr::Many(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterRepr::Few(it) => it.size_hint(),
            IterRepr::Many(it) => it.size_hint(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Tags {
    type Item = (&'a Cow<'static, str>, &'a Cow<'static, str>);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl std::ops::Index<&str> for Tags {
    type Output = str;

    /// The value of the tag `key`. Panics if it is not set (like a map's index); use
    /// [`get`](Tags::get) when it may not be.
    fn index(&self, key: &str) -> &str {
        self.get(key).unwrap_or_else(|| panic!("no tag {key:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(tags: &Tags) -> Vec<String> {
        tags.iter().map(|(k, _)| k.to_string()).collect()
    }

    #[test]
    fn few_and_many_tags_read_the_same_sorted_by_key() {
        let mut tags = Tags::new();
        // Inserted out of order, one overwritten, across the switch to the B-tree.
        let order: Vec<usize> = (0..SMALL + 8).rev().collect();
        for (n, &i) in order.iter().enumerate() {
            tags.insert(format!("k{i:03}").into(), format!("v{i}").into());
            assert_eq!(tags.len(), n + 1);
            let expected: Vec<String> = {
                let mut e: Vec<_> = order[..=n].iter().map(|i| format!("k{i:03}")).collect();
                e.sort();
                e
            };
            assert_eq!(keys(&tags), expected, "after {} tags", n + 1);
        }
        assert!(matches!(tags.repr, Repr::Many(_)));
        tags.insert("k005".into(), "new".into());
        assert_eq!((tags.get("k005"), tags.len()), (Some("new"), SMALL + 8));
        tags.remove("k005");
        assert!(!tags.contains_key("k005") && tags.len() == SMALL + 7);

        let mut few = Tags::new();
        few.insert("b".into(), "2".into());
        few.insert("a".into(), "1".into());
        few.insert("b".into(), "3".into());
        assert_eq!((keys(&few), &few["b"], few.get("c")), (vec!["a".into(), "b".into()], "3", None));
        few.remove("a");
        few.remove("zz");
        assert_eq!(format!("{few:?}"), r#"{"b": "3"}"#);
        assert!(few.clear_keeping_buffer() && few.is_empty());

        // The same tags compare equal in a vector and in a B-tree.
        let mut shrunk = tags.clone();
        for i in 0..SMALL + 8 {
            if i != 7 {
                shrunk.remove(&format!("k{i:03}"));
            }
        }
        let mut one = Tags::new();
        one.insert("k007".into(), "v7".into());
        assert!(matches!(shrunk.repr, Repr::Many(_)) && matches!(one.repr, Repr::Few(_)));
        assert_eq!(shrunk, one);
        assert_ne!(one, Tags::new());
        assert!(!tags.clear_keeping_buffer(), "a B-tree is not kept");
    }
}
