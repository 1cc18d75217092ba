//! The answers of one claims source, kept for a short time per question, each question asked
//! once however many token requests need it at the same moment ([`Flight`] per question).
//!
//! The map is bounded: at [`MAX_QUESTIONS`] questions, those no request is waiting on are
//! forgotten (they are only a cache); if every one is in use, the question is asked without
//! caching.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use proto::clock::UnixTime;
use serde_json::{Map, Value};

use crate::error::Result;
use server_kit::flight::Flight;

/// The most questions kept per source.
pub const MAX_QUESTIONS: usize = 10_000;

/// The claims an answer gave.
pub type Claims = Map<String, Value>;

/// The kept answers of one source, by question (the request body sent).
#[derive(Debug, Default)]
pub struct AnswerCache {
    questions: Mutex<HashMap<String, Arc<Flight<Claims>>>>,
}

impl AnswerCache {
    /// The answer to `question` at `now`: one younger than `cache_secs`, or the failure of
    /// one younger than `failure_cache_secs`, or the outcome of `ask` (run by one caller while
    /// the others wait for it).
    pub async fn answer<F, Fut>(
        &self,
        question: &str,
        now: UnixTime,
        cache_secs: i64,
        failure_cache_secs: i64,
        ask: F,
    ) -> Result<Arc<Claims>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Claims>>,
    {
        let Some(flight) = self.flight(question) else {
            return ask().await.map(Arc::new);
        };
        flight
            .get(now, failure_cache_secs, |at| now - at < cache_secs, ask)
            .await
    }

    /// The flight of `question`, made if new; `None` when the map is full of questions in use.
    fn flight(&self, question: &str) -> Option<Arc<Flight<Claims>>> {
        let mut questions = self
            .questions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = questions.get(question) {
            return Some(flight.clone());
        }
        if questions.len() >= MAX_QUESTIONS {
            questions.retain(|_, flight| Arc::strong_count(flight) > 1);
            if questions.len() >= MAX_QUESTIONS {
                return None;
            }
        }
        let flight = Arc::new(Flight::default());
        questions.insert(question.to_owned(), flight.clone());
        Some(flight)
    }

    /// How many questions are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.questions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;

    fn claims(n: usize) -> Claims {
        json!({ "n": n }).as_object().cloned().unwrap_or_default()
    }

    #[tokio::test]
    async fn an_answer_is_reused_while_young_and_asked_again_after() {
        let cache = AnswerCache::default();
        let asked = AtomicUsize::new(0);
        let ask = || async { Ok(claims(asked.fetch_add(1, Ordering::SeqCst) + 1)) };
        let first = cache.answer("q", 100, 10, 2, ask).await.unwrap();
        let reused = cache.answer("q", 109, 10, 2, ask).await.unwrap();
        assert_eq!(
            (first["n"].clone(), reused["n"].clone()),
            (json!(1), json!(1))
        );
        let fresh = cache.answer("q", 110, 10, 2, ask).await.unwrap();
        assert_eq!(fresh["n"], json!(2));
        let other = cache
            .answer("other question", 110, 10, 2, ask)
            .await
            .unwrap();
        assert_eq!(other["n"], json!(3));
        let uncached = cache.answer("q", 110, 0, 2, ask).await.unwrap();
        assert_eq!(uncached["n"], json!(4));
    }

    #[tokio::test]
    async fn a_full_map_forgets_questions_no_one_waits_on() {
        let cache = AnswerCache::default();
        for i in 0..MAX_QUESTIONS {
            cache
                .answer(&i.to_string(), 100, 10, 2, || async { Ok(claims(i)) })
                .await
                .unwrap();
        }
        assert_eq!(cache.len(), MAX_QUESTIONS);
        let next = cache
            .answer("one more", 100, 10, 2, || async { Ok(claims(7)) })
            .await
            .unwrap();
        assert_eq!(next["n"], json!(7));
        assert_eq!(cache.len(), 1);
    }
}
