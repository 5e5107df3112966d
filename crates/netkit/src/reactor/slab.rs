//! Tokens and the connection slab: a token packs a kind, a generation and a slab
//! index, so an event, timer or wake-up for a connection that has gone (its slot
//! reused or empty) is recognised and dropped. Nothing here does I/O.

use mio::Token;

use super::conn::Conn;

#[cfg(not(target_pointer_width = "64"))]
compile_error!("the reactor packs tokens into 64-bit usize values");

/// Token layout: kind (2 bits) | generation (30 bits) | slab index (32 bits).
pub(crate) const KIND_CONN: usize = 0;
pub(crate) const KIND_LISTENER: usize = 1;
pub(crate) const KIND_DGRAM: usize = 2;
pub(crate) const KIND_WAKER: usize = 3;
pub(crate) const GEN_MASK: usize = (1 << 30) - 1;
pub(crate) const IDX_MASK: usize = (1 << 32) - 1;
pub(crate) const WAKER: Token = Token(KIND_WAKER << 62);

pub(crate) fn token(kind: usize, gen: u32, idx: usize) -> usize {
    (kind << 62) | (((gen as usize) & GEN_MASK) << 32) | (idx & IDX_MASK)
}

pub(crate) fn kind_of(t: usize) -> usize {
    t >> 62
}

pub(crate) fn idx_of(t: usize) -> usize {
    t & IDX_MASK
}

pub(crate) fn gen_of(t: usize) -> u32 {
    ((t >> 32) & GEN_MASK) as u32
}

/// A slot: its generation and the connection in it, if any.
pub(crate) struct Slot {
    gen: u32,
    conn: Option<Conn>,
}

/// Connections by index, with a generation per slot so stale tokens miss.
#[derive(Default)]
pub(crate) struct Slab {
    slots: Vec<Slot>,
    free: Vec<usize>,
    pub(crate) len: usize,
}

impl Slab {
    /// A free index and its current generation.
    pub(crate) fn vacant(&mut self) -> (usize, u32) {
        if let Some(i) = self.free.pop() {
            let gen = self.slots.get(i).map_or(0, |s| s.gen);
            return (i, gen);
        }
        self.slots.push(Slot { gen: 0, conn: None });
        (self.slots.len() - 1, 0)
    }

    pub(crate) fn give_back(&mut self, idx: usize) {
        self.free.push(idx);
    }

    pub(crate) fn insert(&mut self, idx: usize, conn: Conn) {
        if let Some(s) = self.slots.get_mut(idx) {
            s.conn = Some(conn);
            self.len += 1;
        }
    }

    pub(crate) fn get_mut(&mut self, t: usize) -> Option<&mut Conn> {
        let s = self.slots.get_mut(idx_of(t))?;
        if s.gen != gen_of(t) {
            return None;
        }
        s.conn.as_mut()
    }

    pub(crate) fn remove(&mut self, t: usize) -> Option<Conn> {
        let idx = idx_of(t);
        let s = self.slots.get_mut(idx)?;
        if s.gen != gen_of(t) {
            return None;
        }
        let c = s.conn.take()?;
        s.gen = (s.gen + 1) & GEN_MASK as u32;
        self.free.push(idx);
        self.len -= 1;
        Some(c)
    }

    pub(crate) fn tokens(&self) -> Vec<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.conn.is_some())
            .map(|(i, s)| token(KIND_CONN, s.gen, i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_generations_differ() {
        let t = token(KIND_CONN, 7, 12345);
        assert_eq!(kind_of(t), KIND_CONN);
        assert_eq!(gen_of(t), 7);
        assert_eq!(idx_of(t), 12345);
        assert_ne!(t, token(KIND_CONN, 8, 12345));
        assert_eq!(kind_of(WAKER.0), KIND_WAKER);
        let l = token(KIND_LISTENER, 0, 3);
        assert_eq!((kind_of(l), idx_of(l)), (KIND_LISTENER, 3));
    }

    #[test]
    fn slab_drops_stale_tokens() {
        let mut s = Slab::default();
        let (i, g) = s.vacant();
        let t = token(KIND_CONN, g, i);
        assert!(s.get_mut(t).is_none());
        assert!(s.remove(t).is_none());
        assert_eq!(s.len, 0);
        assert_eq!(s.tokens(), Vec::<usize>::new());
    }
}
