;; For each DIR/<base>.edn, reads DIR/<base>.rust.fress.gz (written by the
;; Rust encoder) the way the Clojure Datacamp library restores a chunk
;; (GZIPInputStream + fressian/read) and compares header and datoms.
;;
;; Usage: clojure -cp <data.fressian.jar>:<fressian.jar> chunk_check.clj DIR
;; Prints "OK <base> <datom count>" or "FAIL <base>: …" per chunk and
;; "DONE <count>".
(load-file (str (.getParent (java.io.File. ^String *file*)) "/chunk_common.clj"))

(let [[dir] *command-line-args*
      files (sort (filter #(.endsWith (.getName ^java.io.File %) ".edn") (.listFiles (java.io.File. ^String dir))))]
  (doseq [^java.io.File f files]
    (let [base (subs (.getName f) 0 (- (count (.getName f)) 4))
          {:keys [id datoms]} (read-edn-file (.getPath f))
          m (try (with-open [in (GZIPInputStream. (FileInputStream. (str dir "/" base ".rust.fress.gz")))]
                   (fress/read in))
                 (catch Throwable t t))]
      (cond
        (instance? Throwable m) (println "FAIL" (str base ":") "reading threw" (str m))
        (not= (dissoc m :datoms) (dissoc (chunk-map id nil) :datoms))
        (println "FAIL" (str base ":") "header" (pr-str (dissoc m :datoms)))
        (not= (map #(mapv normalize-value %) datoms) (map #(mapv normalize-value %) (:datoms m)))
        (println "FAIL" (str base ":") "datoms differ; first difference at"
                 (first (keep-indexed (fn [i [a b]] (when (not= (mapv normalize-value a) (mapv normalize-value b)) [i a (vec b)]))
                                      (map vector datoms (:datoms m)))))
        :else (println "OK" base (count (:datoms m))))))
  (println "DONE" (count files)))
